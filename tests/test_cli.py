"""The qsync command: each subcommand on tiny inputs, compared with the library called directly."""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import qsync_jax as qs
from qsync_jax._cli import main
from qsync_jax._cli._models import DEFAULTS
from qsync_jax._cli._parser import PARAMETERS, build_parser
from qsync_jax._cli._simulate import _mechanical_measures
from qsync_jax._cli._sweep_config import load
from qsync_jax._reproduce.bittner2025 import steady_measures


def sweep_file(tmp_path, text, name="config.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def run_sweep(config, target):
    assert main(["sweep", str(config), "--out", str(target), "--no-progress"]) == 0
    with xr.open_dataset(target, engine="h5netcdf") as ds:
        return ds.load()


HELP = [["--help"], ["--version"], ["reproduce", "--help"], ["simulate", "--help"],
        ["sweep", "--help"]]


def _help_pages() -> dict[str, str]:
    """Every ``--help`` page, rendered as the terminal shows it (80 columns)."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"qsync": parser.format_help()} | {
        f"qsync {name}": sub.format_help() for name, sub in commands.choices.items()}


def test_help_and_version_import_no_jax_and_answer_fast():
    # Each in a fresh interpreter: `qsync --help` must not wait for JAX (seconds) to import.
    code = ("import sys\nfrom qsync_jax._cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert 'jax' not in sys.modules, 'imported jax'\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    started = time.perf_counter()
    for argv in HELP:
        run = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, (argv, run.stderr)
        version = re.fullmatch(r"qsync \d+\.\d+\.\d+\S*\n", run.stdout)
        assert run.stdout.startswith("usage: qsync") or version, run.stdout
    per_help = (time.perf_counter() - started) / len(HELP)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import jax"], env=env, check=True, timeout=120)
    jax_import = time.perf_counter() - started
    print(f"qsync --help: {per_help:.2f} s per call; python -c 'import jax': {jax_import:.2f} s")
    assert per_help < jax_import  # side by side; on an idle machine about 0.1 s against 1-3 s


def test_python_m_qsync_jax_help():
    run = subprocess.run([sys.executable, "-m", "qsync_jax", "--help"], capture_output=True,
                         text=True, timeout=120, env={**os.environ,
                                                      "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 0 and run.stdout.startswith("usage: qsync")


def test_every_option_states_its_default():
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = sub._get_formatter()._expand_help(action)
            where = f"qsync {name} {action.option_strings[0]}: {text!r}"
            assert "(default: " in text or "; default: " in text, where
            if action.dest in PARAMETERS:  # one default per model kind, from _models.DEFAULTS
                for kind, values in DEFAULTS.items():
                    if action.dest in values:
                        value = values[action.dest]
                        value = value if isinstance(value, list) else [value]
                        assert ",".join(f"{v:g}" for v in value) in text, (kind, where)
            elif isinstance(action.default, float):
                assert f"default: {action.default:g}" in text, where
            elif isinstance(action.default, str):
                assert f"default: {action.default}" in text, where
            elif action.default is False:
                assert "default: off" in text, where


def test_parameter_units_are_the_model_declarations():
    # The help cannot import the models (JAX): its units are checked against their declarations.
    models = {"pair": qs.OptomechanicalNetwork, "ring": qs.OptomechanicalRing,
              "correlated-bath": qs.CorrelatedBathOscillators}
    declared = {}
    for kind, model in models.items():
        for name, parameter in qs.parameters(model).items():
            if name in DEFAULTS[kind]:
                declared.setdefault(name, set()).add(parameter.units)
    assert set(declared) == set(PARAMETERS) - {"n_sites"}
    for name, units in declared.items():
        assert units == {PARAMETERS[name][1].replace("dimensionless", "1")}, name


def test_help_is_plain_text_with_units():
    for page, text in _help_pages().items():
        assert text.isascii(), page
        for markup in ("``", "`", ":mod:", ":func:", "**", "\\"):
            assert markup not in text, (page, markup)
    pages = _help_pages()
    assert "unit-free" in pages["qsync"] and "1/omega_1" in pages["qsync"]
    assert "--t-final T_FINAL     end of the averaging window [time]" in pages["qsync simulate"]


def test_help_and_version(capsys):
    for argv in (["--help"], ["--version"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("reproduce", "simulate", "sweep"):
        assert command in out
    assert re.search(r"qsync \d+\.\d+", out)


def test_simulate_pair_echoes_parameters_window_means_and_end_values(capsys):
    argv = ["simulate", "--model", "pair", "--t-final", "120", "--average-from", "100",
            "--rtol", "1e-6", "--atol", "1e-6", "--mu", "0.03"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["parameters"] == {"omega": [1.0, 1.005], "kappa": 0.15, "gamma": 0.005,
                                    "g": 0.005, "E": 48.0, "mu": 0.03, "n_th": 0.0}
    assert result["window"] == [100.0, 120.0] and result["status"] == "success"
    assert result["solver"] == {"rtol": 1e-6, "atol": 1e-6}
    assert set(result["end_of_window"]) == {"S_c", "S_c_absolute", "S_p", "log_negativity",
                                            "gaussian_discord"}
    model = qs.optomechanical_pair(**result["parameters"])
    avg = qs.time_average(model, _mechanical_measures, (100.0, 120.0),
                          config=qs.SolverConfig(rtol=1e-6, atol=1e-6))
    for name in ("S_c", "S_p"):
        assert result["window_mean"][name] == pytest.approx(float(avg.value[name]), rel=1e-12)
    assert result["end_of_window"]["S_c"] == pytest.approx(
        float(qs.complete_sync(avg.state, 1, 3)), rel=1e-12)
    assert result["num_steps"] == int(avg.num_steps)


def test_simulate_correlated_bath_steady_state(capsys):
    assert main(["simulate", "--model", "correlated-bath", "--xi", "0.3", "--n-th", "0,1",
                 "--g", "0.1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["parameters"] == {"omega": [1.0, 1.2], "g": 0.1, "gamma": 0.5, "xi": 0.3,
                                    "n_th": [0.0, 1.0]}
    cov = qs.steady_state(qs.CorrelatedBathOscillators(**result["parameters"])).cov
    steady = result["steady_state"]
    assert steady["mutual_information_renyi2"] == pytest.approx(
        float(qs.mutual_information(cov, kind="renyi2")), rel=1e-12)
    assert steady["mutual_information_renyi2"] > 0 and steady["log_negativity"] == 0.0


def test_sweep_correlated_bath_matches_direct_solves(tmp_path):
    config = sweep_file(tmp_path, 'output = "unused.nc"\n[model]\nkind = "correlated-bath"\n'
                        "n_th = [0.0, 1.0]\ng = 0.1\n[sweep]\nmode = \"grid\"\n[sweep.axes]\n"
                        "xi = {start = -0.5, stop = 0.5, num = 5}\ng = [0.0, 0.1]\n")
    ds = run_sweep(config, tmp_path / "out" / "bath.nc")
    assert ds["mutual_information"].shape == (5, 2)
    assert (ds["status"] == "success").all()
    direct = steady_measures(qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.1, gamma=0.5,
                                                          xi=0.25, n_th=(0.0, 1.0)))
    np.testing.assert_allclose(ds["mutual_information"][3, 1], direct.mutual_information,
                               rtol=1e-12)


PAIR = """
[model]
kind = "{kind}"
{extra}
[measure]
window = [4.0, 6.0]
pairs = [[1, 3]]
rtol = 1e-5
atol = 1e-5
[sweep]
mode = "zip"
[sweep.axes]
mu = [0.0, 0.05]
"""


def direct_model(kind, mu):
    common = dict(kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=mu)
    if kind == "pair":
        return qs.optomechanical_pair(omega=(1.0, 1.005), **common)
    return qs.optomechanical_ring(3, omega=1.0, **common)


KINDS = [pytest.param("pair", "omega = [1.0, 1.005]", marks=pytest.mark.slow),
         ("ring", "n_sites = 3")]


@pytest.mark.parametrize("kind, extra", KINDS)
def test_sweep_optomechanics_runs_the_configured_model(tmp_path, kind, extra):
    config = sweep_file(tmp_path, PAIR.format(kind=kind, extra=extra))
    plan = load(config)
    for got, want in zip(jax.tree.leaves(plan.model), jax.tree.leaves(direct_model(kind, 0.02))):
        np.testing.assert_array_equal(got, want)
    if kind == "ring":
        return  # the run itself: test_sweep_optomechanics_matches_direct_time_averages (slow)
    ds = run_sweep(config, tmp_path / f"{kind}.nc")
    assert list(ds["status"].values) == ["success", "success"]
    assert np.all((0 < ds["complete_sync"]) & (ds["complete_sync"] <= 1))


@pytest.mark.slow
@pytest.mark.parametrize("kind, extra", KINDS)
def test_sweep_optomechanics_matches_direct_time_averages(tmp_path, kind, extra):
    config = sweep_file(tmp_path, PAIR.format(kind=kind, extra=extra))
    ds = run_sweep(config, tmp_path / f"{kind}.nc")
    assert list(ds["status"].values) == ["success", "success"]
    direct = load(config).fn(direct_model(kind, 0.05))
    assert direct.status == qs.Status.success
    # batched and single solves round differently, so their adaptive steps may differ: agreement
    # to the solver tolerance (rtol = atol = 1e-5), not to rounding
    for name in ("complete_sync", "phase_sync", "log_negativity", "discord"):
        np.testing.assert_allclose(ds[name][1], direct.value[name], rtol=1e-5, atol=1e-6)


def test_docstring_example_is_a_valid_config(tmp_path):
    from qsync_jax._cli import _sweep_config

    example = _sweep_config.__doc__.split("::\n")[1].split("\n\nChecked")[0]
    text = "\n".join(line[4:] for line in example.splitlines())
    plan = load(sweep_file(tmp_path, text))
    assert plan.output == "mu_sweep.nc" and plan.options == {"mode": "grid", "batch_size": 256}
    assert [len(v) for v in plan.axes.values()] == [17, 3]
    np.testing.assert_array_equal(plan.fn.args[0], jnp.array([1000.0, 2000.0]))


def test_reproduce_one_figure(tmp_path, capsys):
    assert main(["reproduce", "bittner2025", "--figure", "2", "--quick", "--out",
                 str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "bittner2025_fig2.png").stat().st_size > 10_000
    data = json.loads((tmp_path / "bittner2025_fig2.json").read_text())
    assert data["parameters"]["gamma"] == 0.1
