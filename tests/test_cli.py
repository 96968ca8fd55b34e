"""The qsync command: help, each subcommand on tiny inputs, bad options -> exit code 2."""

import json
import subprocess
import sys

import pytest
import xarray as xr

from qsync_jax._cli import main


def run(*args, check=True):
    out = subprocess.run([sys.executable, "-m", "qsync_jax", *args], capture_output=True,
                         text=True, timeout=600)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_help_lists_subcommands():
    out = run("--help")
    for command in ("reproduce", "simulate", "sweep"):
        assert command in out.stdout


def test_simulate_pair_prints_json(capsys):
    assert main(["simulate", "--model", "pair", "--t-final", "120", "--average-from", "100",
                 "--rtol", "1e-6", "--atol", "1e-6"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 < result["S_c_mean"] <= 1 and result["num_steps"] > 0
    assert set(result) >= {"S_p_mean", "log_negativity", "gaussian_discord"}


def test_simulate_correlated_bath_steady_state(capsys):
    assert main(["simulate", "--model", "correlated-bath", "--xi", "0.3", "--n-th", "0,1",
                 "--g", "0.1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mutual_information_renyi2"] > 0 and result["log_negativity"] == 0.0


def test_sweep_from_toml(tmp_path):
    config = tmp_path / "bath.toml"
    config.write_text(
        'output = "unused.nc"\n[model]\nkind = "correlated-bath"\nn_th = [0.0, 1.0]\ng = 0.1\n'
        "[sweep]\nmode = \"grid\"\n[sweep.axes]\nxi = {start = -0.5, stop = 0.5, num = 5}\n"
        "g = [0.0, 0.1]\n"
    )
    target = tmp_path / "out" / "bath.nc"
    assert main(["sweep", str(config), "--out", str(target), "--no-progress"]) == 0
    ds = xr.open_dataset(target, engine="h5netcdf")
    assert ds["mutual_information"].shape == (5, 2)
    assert (ds["status"] == "success").all()


def test_reproduce_one_figure(tmp_path, capsys):
    assert main(["reproduce", "bittner2025", "--figure", "2", "--quick", "--out",
                 str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "bittner2025_fig2.png").stat().st_size > 10_000
    data = json.loads((tmp_path / "bittner2025_fig2.json").read_text())
    assert data["parameters"]["gamma"] == 0.1


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "--kappa", "-1"], "must be >= 0"),
        (["simulate", "--model", "triangle"], "invalid choice"),
        (["simulate", "--model", "correlated-bath", "--xi", "1.5"], "xi"),
        (["simulate", "--t-final", "10", "--average-from", "20"], "--average-from"),
        (["reproduce", "mari2013", "--figure", "9"], "not a figure"),
        (["sweep", "/nonexistent.toml"], "No such file"),
    ],
)
def test_bad_options_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
