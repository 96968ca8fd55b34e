"""Hostile input to every qsync command: one line on stderr and exit code 2, never a traceback,
never a silent wrong number (random TOML configs: a Dataset that matches direct solves, or one
clean error)."""

import itertools
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import qsync_jax as qs
from qsync_jax._cli import _models, main
from qsync_jax._reproduce.bittner2025 import steady_measures


def fails_cleanly(argv, capsys, match=None):
    """``qsync argv`` exits with 2 and one stderr line (containing ``match``)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qsync"), err
    if match is not None:
        assert match in lines[0], lines[0]
    return lines[0]


BATH = ["simulate", "--model", "correlated-bath"]
HOSTILE = [
    # physical parameters: checked by the model constructors
    (["simulate", "--kappa", "-1"], "`kappa` must be non-negative"),
    (["simulate", "--kappa", "nan"], "`kappa` must be finite"),
    (["simulate", "--gamma", "inf"], "`gamma` must be finite"),
    (["simulate", "--n-th", "-0.5"], "`n_th` must be non-negative"),
    (["simulate", "--mu", "nan"], "`mu` must be finite"),
    (["simulate", "--E=-inf"], "`E` must be finite"),
    (["simulate", "--omega", "1,2,3"], "`omega`"),
    (["simulate", "--model", "ring", "--n-sites", "2"], "`n_sites`"),
    (["simulate", "--model", "ring", "--omega", "1,1.1,1.2"], "ring parameters"),
    (BATH + ["--xi", "1.5"], "xi"),
    (BATH + ["--xi", "nan"], "xi"),
    (BATH + ["--gamma", "0"], "no steady state"),  # γ = 0 is allowed: a closed system
    (BATH + ["--gamma", "-0.5"], "gamma"),
    (BATH + ["--n-th", "1,2,3"], "n_th"),
    (BATH + ["--omega", "1", "--xi", "1"], "no steady state"),  # undamped dark mode
    (BATH + ["--omega", "1", "--xi", "-1", "--g", "0"], "no steady state"),
    # options that do not apply, wrong types, numerics
    (["simulate", "--xi", "0.2"], "--xi does not apply"),
    (BATH + ["--kappa", "0.1"], "--kappa does not apply"),
    (["simulate", "--model", "triangle"], "invalid choice"),
    (["simulate", "--omega", "1,x"], "expected a number"),
    (["simulate", "--kappa", "0.1.2"], "expected a number"),
    (["simulate", "--n-sites", "3.5"], "expected an integer"),
    (["simulate", "--t-final", "10", "--average-from", "20"], "--average-from"),
    (["simulate", "--t-final", "inf"], "finite"),
    (["simulate", "--t-final", "nan"], "finite"),
    (["simulate", "--t-final", "-5"], "must be > 0"),
    (["simulate", "--average-from", "-1"], "must be >= 0"),
    (["simulate", "--rtol", "0"], "must be > 0"),
    (["simulate", "--atol", "nan"], "finite"),
    (["simulate", "--bogus"], "unrecognized arguments"),
    ([], "required"),
    (["frobnicate"], "invalid choice"),
    # reproduce
    (["reproduce", "mari2013", "--figure", "9"], "not a figure"),
    (["reproduce", "nature2030"], "invalid choice"),
    # sweep: files
    (["sweep", "/nonexistent.toml"], "No such file"),
    (["sweep", "/"], "Is a directory"),
]


@pytest.mark.parametrize("argv, message", HOSTILE)
def test_hostile_arguments_fail_cleanly(argv, message, capsys):
    fails_cleanly(argv, capsys, message)


def test_unwritable_outputs_are_refused_before_any_work(tmp_path, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(qs, "sweep", no_work)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    config = tmp_path / "c.toml"
    config.write_text('[model]\nkind = "correlated-bath"\n[sweep.axes]\nxi = [0.0, 0.5]\n')
    for out in (blocker / "out.nc", tmp_path, "/proc/qsync.nc"):
        fails_cleanly(["sweep", str(config), "--out", str(out), "--no-progress"], capsys)
    config.write_text(f'output = "{blocker}/x.nc"\n' + config.read_text())
    fails_cleanly(["sweep", str(config)], capsys, "a_file")
    fails_cleanly(["reproduce", "bittner2025", "--out", str(blocker)], capsys, "is a file")


TOML_ERRORS = [
    ('[model]\nkind = "correlated-bath"\ngama = 0.3\n', "'gama' in model", "'gamma'"),
    ('[model]\nkind = "pair"\nxi = 0.3\n', "'xi'", "valid keys"),
    ("[measure]\nwindw = [1.0, 2.0]\n", "'windw'", "'window'"),
    ("[sweep]\nbatchsize = 4\n", "'batchsize'", "'batch_size'"),
    ("outptu = 'x.nc'\n", "'outptu'", "'output'"),
    ("[sweep.axes]\nmuu = [0.0]\n", "'muu'", "'mu'"),
    ("[sweep.axes]\nmu = {start = 0.0, stop = 1.0, nmu = 3}\n", "'nmu'", "'num'"),
    ("[sweep]\nbatch_size = 2.0\n", "batch_size", "integer"),
    ("[sweep]\nbatch_size = 0\n", "batch_size", "integer"),
    ("[sweep.axes]\nmu = {start = 0.0, stop = 1.0, num = 2.5}\n", "num", "integer"),
    ('[model]\nkind = "ring"\nn_sites = 3.0\n', "n_sites", "integer"),
    ('[model]\nkind = "ring"\nn_sites = 2\n', "n_sites", "integer >= 3"),
    ('[model]\nkind = "triangle"\n', "model.kind", "triangle"),
    ('[model]\nkappa = "fast"\n', "model.kappa", "number"),
    ("[model]\nkappa = -1.0\n", "kappa", "non-negative"),
    ("[model]\nkappa = nan\n", "kappa", "finite"),
    ("[model]\nomega = [1.0, true]\n", "model.omega", "number"),
    ("[sweep.axes]\nkappa = [0.1, -0.1]\n", "kappa", "non-negative"),
    ("[sweep.axes]\nmu = [0.0, nan]\n", "sweep.axes.mu", "finite"),
    ("[sweep.axes]\nmu = [inf]\n", "sweep.axes.mu", "finite"),
    ("[sweep.axes]\nmu = []\n", "sweep.axes.mu", "number"),
    ("[sweep.axes]\nmu = 'lots'\n", "sweep.axes.mu", "number"),
    ("[sweep.axes]\n", "[sweep.axes]", "at least one"),
    ("[sweep]\naxes = 3\n", "sweep.axes", "table"),
    ("model = 3\n", "model", "table"),
    ("[measure]\nwindow = [2.0, 1.0]\n", "measure.window", "t_a < t_b"),
    ("[measure]\nwindow = [-1.0, 1.0]\n", "measure.window", "t_a < t_b"),
    ("[measure]\nwindow = [1.0, inf]\n", "measure.window", "finite"),
    ("[measure]\nwindow = [1.0]\n", "measure.window", "t_a < t_b"),
    ("[measure]\npairs = [[1, 1]]\n", "measure.pairs", "distinct"),
    ("[measure]\npairs = [[1, 9]]\n", "measure.pairs", "< 4"),
    ("[measure]\npairs = [[1.0, 3]]\n", "measure.pairs", "indices"),
    ("[measure]\nrtol = 0.0\n", "rtol", "> 0"),
    ("[measure]\natol = nan\n", "atol", "finite"),
    ('[model]\nkind = "correlated-bath"\n[measure]\nwindow = [1.0, 2.0]\n', "'window'",
     "steady state"),
    ('[sweep]\nmode = "diagonal"\n', "mode", "diagonal"),
    ("[sweep]\nmode = 3\n", "sweep.mode", "string"),
    ("output = 3\n", "output", "file name"),
    ("this is not toml\n", "not valid TOML", ""),
]


@pytest.mark.parametrize("text, where, hint", TOML_ERRORS)
def test_bad_sweep_configs_name_the_key(tmp_path, capsys, monkeypatch, text, where, hint):
    monkeypatch.setattr(qs, "sweep", _sweep_checking_options)
    if "[sweep.axes]" not in text and "axes" not in text:
        text += "\n[sweep.axes]\nmu = [0.0, 0.02]\n" if "correlated" not in text else (
            "\n[sweep.axes]\nxi = [0.0]\n")
    config = tmp_path / "c.toml"
    config.write_text(text)
    line = fails_cleanly(["sweep", str(config), "--out", str(tmp_path / "o.nc")], capsys)
    assert where in line and hint in line, line


def _sweep_checking_options(fn, model, axes, *, mode="grid", batch_size=None, **kwargs):
    if mode not in ("grid", "zip"):  # qs.sweep's own first check, without its work
        raise ValueError(f"mode must be 'grid' or 'zip'; got {mode!r}")
    raise AssertionError("a bad config reached the sweep")


def test_physics_failure_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "qsync_jax", *BATH, "--omega", "1", "--xi", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "no steady state" in proc.stderr


# ----------------------------------------------------------------- random TOML configs

_KEYS = _models.parameter_names("correlated-bath")
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-2.0, 2.0),
    st.integers(-3, 3),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.floats(-1.5, 1.5), min_size=0, max_size=3),
)
_names = st.one_of(st.sampled_from(_KEYS), st.sampled_from(["gama", "Xi", "n_sites", "kind2"]))
_axis = st.one_of(
    st.lists(st.one_of(st.floats(-1.2, 1.2), st.floats(allow_nan=True, allow_infinity=True)),
             min_size=0, max_size=3),
    st.fixed_dictionaries({"start": st.floats(-1.2, 1.2), "stop": st.floats(-1.2, 1.2),
                           "num": st.one_of(st.integers(-1, 3), st.floats(0, 3))}),
    _values,
)
_hostile = st.fixed_dictionaries({
    "model": st.dictionaries(_names, _values, max_size=3),
    "axes": st.dictionaries(_names, _axis, min_size=0, max_size=2),
    "sweep": st.dictionaries(st.sampled_from(["mode", "batch_size", "batchsize"]),
                             st.one_of(st.sampled_from(["grid", "zip", "spiral"]),
                                       st.integers(-1, 4), st.floats(0, 4)), max_size=2),
})
_RANGES = {"omega": (0.5, 2.0), "g": (-1.0, 1.0), "gamma": (0.05, 1.0), "xi": (-1.0, 1.0),
           "n_th": (0.0, 3.0)}
_in_range = {k: st.one_of(st.floats(*r), st.sampled_from(r)) for k, r in _RANGES.items()}
_plausible = st.fixed_dictionaries({
    "model": st.fixed_dictionaries({}, optional=_in_range),
    "axes": st.dictionaries(st.sampled_from(sorted(_RANGES)), st.just(None), min_size=1,
                            max_size=2).flatmap(lambda names: st.fixed_dictionaries(
                                {n: st.lists(_in_range[n], min_size=1, max_size=3)
                                 for n in names})),
    "sweep": st.fixed_dictionaries({}, optional={"mode": st.sampled_from(["grid", "zip"]),
                                                 "batch_size": st.integers(1, 4)}),
})
_configs = st.one_of(_plausible, _hostile)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if np.isnan(v) else ("inf" if v == np.inf else "-inf" if v == -np.inf
                                          else repr(v))
    if isinstance(v, str):
        return '"' + "".join(c for c in v if c.isalnum()) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return repr(v)


def _toml(config):
    lines = ['[model]', 'kind = "correlated-bath"']
    lines += [f"{k} = {_toml_value(v)}" for k, v in config["model"].items()]
    lines += ["[sweep]"] + [f"{k} = {_toml_value(v)}" for k, v in config["sweep"].items()]
    lines += ["[sweep.axes]"] + [f"{k} = {_toml_value(v)}" for k, v in config["axes"].items()]
    return "\n".join(lines) + "\n"


TALLY = {"tried": 0, "clean error": 0, "dataset checked": 0, "silent garbage": 0}


def _check_dataset(ds, config):
    """Every point equals the directly built model's steady state (or has a failed status
    with NaN values, where the constructor accepts it but there is no steady state)."""
    params = {k: v for k, v in config["model"].items()}
    axes = list(ds["status"].dims)
    for index in itertools.product(*(range(ds.sizes[d]) for d in axes)):
        point = ds.isel(dict(zip(axes, index)))
        values = {name: float(point[name]) for name in config["axes"]}
        model = _models.build("correlated-bath", params | values)
        status = str(point["status"].values)
        if qs.solve_steady_state(model, throw=False).status != qs.Status.success:
            assert status != "success" and np.isnan(float(point["mutual_information"]))
            continue
        assert status == "success"
        direct = steady_measures(model)
        for name in ("mutual_information", "discord", "log_negativity", "heat_current"):
            np.testing.assert_allclose(point[name], getattr(direct, name), rtol=1e-10,
                                       atol=1e-13)


@settings(max_examples=15, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(config=_configs)
def test_random_toml_gives_a_correct_dataset_or_one_clean_error(config, tmp_path_factory,
                                                                capsys):
    folder = tmp_path_factory.mktemp("random")
    path, out = folder / "c.toml", folder / "o.nc"
    path.write_text(_toml(config))
    TALLY["tried"] += 1
    try:
        code = main(["sweep", str(path), "--out", str(out), "--no-progress"])
    except SystemExit as exit_info:
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.code == 2 and len(err) == 1, err
        TALLY["clean error"] += 1
        return
    assert code == 0
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        try:
            _check_dataset(ds.load(), config)
        except AssertionError:
            TALLY["silent garbage"] += 1
            raise
    TALLY["dataset checked"] += 1
