"""sweep(): batching rule, labels, per-point status, sharding, checkpoints, caching."""

import functools
import hashlib
import importlib.util
import json
import logging
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from unittest import mock

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from helpers import DampedOscillator
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import qsync_jax as qs
from qsync_jax._sweep._checkpoint import Checkpoint

TESTS = Path(__file__).parent
MODEL = DampedOscillator(1.0, 0.1, 0.5, 0.05)
CONFIG = qs.SolverConfig(rtol=1e-10, atol=1e-10, max_steps=50_000)
BATCH = 4  # one chunk shape for most tests: compiled once


def observables(t, state):
    return {"x2": state.cov[0, 0], "mean": state.mean}


def window_average(window, model):
    return qs.time_average(model, observables, window, config=CONFIG, throw=False)


# The sweeps' main use: a time average. A Partial's arrays are inputs of the compiled chunk, so
# every test below that uses a window_average with chunks of BATCH points shares one compilation.
averaged = jax.tree_util.Partial(window_average, jnp.array([1.0, 6.0]))


def at(model, **values):
    """``model`` with some fields replaced, built by hand (float64, never weakly typed)."""
    new = [jnp.asarray(v, dtype=float) for v in values.values()]
    return eqx.tree_at(lambda m: [getattr(m, k) for k in values], model, new)


def test_vmap_matches_loop_at_random_points():
    rng = np.random.default_rng(0)
    gamma, omega, force = rng.uniform(0.05, 0.5, 7), rng.uniform(0.5, 3.0, 7), rng.normal(size=7)
    ds = qs.sweep(
        averaged, MODEL, {"gamma": gamma, "omega": omega, "force": force}, mode="zip",
        batch_size=BATCH, progress=False,
    )
    assert list(ds.status.values) == ["success"] * 7
    for k in range(7):
        ref = averaged(at(MODEL, gamma=gamma[k], omega=omega[k], force=force[k]))
        np.testing.assert_allclose(ds.x2[k], ref.value["x2"], rtol=1e-12)
        np.testing.assert_allclose(ds["mean"][k], ref.value["mean"], rtol=1e-12, atol=1e-12)
        assert ds.num_steps[k] == ref.num_steps


def test_points_in_several_solver_loops_match_single_solves(monkeypatch):
    """On a CPU a device's share beyond _LANES_PER_CPU_LOOP points runs as several vmapped
    loops of equal size (the chunk padded with its last point); every point equals its own
    solve, and the padding never reaches the dataset."""
    from qsync_jax._sweep import _execute

    class Device:
        def __init__(self, platform):
            self.platform = platform

    plan = _execute.Chunks.plan
    assert plan(None, 300, [Device("cpu")] * 2) == _execute.Chunks(300, 300, 300, 3)
    assert plan(130, 1000, [Device("cpu")]) == _execute.Chunks(1000, 130, 132, 3)
    assert plan(None, 300, [Device("gpu")]).groups == 1
    monkeypatch.setattr(_execute, "_LANES_PER_CPU_LOOP", 3)
    assert plan(11, 11, [Device("cpu")]) == _execute.Chunks(11, 11, 12, 4)
    rng = np.random.default_rng(1)
    gamma, omega = rng.uniform(0.05, 0.5, 11), rng.uniform(0.5, 3.0, 11)
    ds = qs.sweep(averaged, MODEL, {"gamma": gamma, "omega": omega}, mode="zip", batch_size=11,
                  devices=jax.devices()[:1], progress=False)
    # chunks of 7 and 4 points (the last short), each run as 3 loops of 3 lanes
    short = qs.sweep(averaged, MODEL, {"gamma": gamma, "omega": omega}, mode="zip",
                     batch_size=7, devices=jax.devices()[:1], progress=False)
    for result in (ds, short):
        assert list(result.status.values) == ["success"] * 11
        for k in range(11):
            ref = averaged(at(MODEL, gamma=gamma[k], omega=omega[k]))
            np.testing.assert_allclose(result.x2[k], ref.value["x2"], rtol=1e-12)
            assert result.num_steps[k] == ref.num_steps


def test_grid_and_zip_shapes_and_labels():
    gamma, n_th = np.array([0.1, 0.2, 0.3]), np.array([0.0, 1.0])
    grid = qs.sweep(averaged, MODEL, {"gamma": gamma, "n_th": n_th}, batch_size=BATCH,
                    progress=False)
    assert grid.x2.dims == ("gamma", "n_th") and grid.x2.shape == (3, 2)
    assert grid["mean"].dims == ("gamma", "n_th", "mean_0") and grid["mean"].shape == (3, 2, 2)
    assert grid.status.dims == grid.num_steps.dims == ("gamma", "n_th")
    np.testing.assert_array_equal(grid.gamma, gamma)
    np.testing.assert_array_equal(grid.n_th, n_th)
    assert grid.attrs["sweep_mode"] == "grid"

    zipped = qs.sweep(averaged, MODEL, {"gamma": gamma, "n_th": [0.0, 1.0, 1.0]}, mode="zip",
                      batch_size=BATCH, progress=False)
    assert zipped.x2.dims == ("point",) and zipped.x2.shape == (3,)
    np.testing.assert_array_equal(zipped.n_th, [0.0, 1.0, 1.0])
    # Labels are the values each point was computed with: the grid cell (gamma=0.2, n_th=1)
    # is zip point 1.
    assert zipped.x2.sel(point=1) == grid.x2.sel(gamma=0.2, n_th=1.0)
    # The stationary x variance of a thermal oscillator is n_th + 1/2 (it starts there).
    np.testing.assert_allclose(grid.x2, np.broadcast_to(n_th + 0.5, (3, 2)), rtol=1e-9)


def test_trajectories_and_plain_outputs():
    ts = jnp.linspace(0.0, 2.0, 5)

    def trajectory(model):
        return qs.evolve(model, ts, save=observables, config=CONFIG, throw=False)

    ds = qs.sweep(trajectory, MODEL, {"n_th": [0.0, 2.0]}, progress=False)
    assert ds.x2.dims == ("n_th", "t") and ds["mean"].dims == ("n_th", "t", "mean_0")
    np.testing.assert_allclose(ds.t, ts)
    ref = trajectory(at(MODEL, n_th=2.0))
    np.testing.assert_allclose(ds.x2.sel(n_th=2.0), ref.states["x2"], rtol=1e-12)

    def plain(model):  # no status reported: non-finite outputs mark a point as diverged
        return jnp.log(model.gamma)

    ds = qs.sweep(plain, MODEL, {"gamma": [-1.0, 2.0]}, progress=False)
    assert list(ds.status.values) == ["diverged", "success"]
    assert np.isnan(ds.output[0]) and ds.output[1] == np.log(2.0)
    assert list(ds.num_steps.values) == [-1, -1]


def test_per_site_parameter_is_broadcast():
    pair = qs.optomechanical_pair(
        omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02
    )
    ds = qs.sweep(lambda m: {"k": m.kappa, "w": m.omega}, pair, {"kappa": [0.1, 0.2]},
                  progress=False)
    np.testing.assert_array_equal(ds.k.values, [[0.1, 0.1], [0.2, 0.2]])
    np.testing.assert_array_equal(ds.w.values, [[1.0, 1.005], [1.0, 1.005]])
    # The coupling strength scales the pair's graph; n_th sets both mechanical baths.
    ds = qs.sweep(lambda m: {"matrix": m.mu_matrix, "baths": m.n_th}, pair,
                  {"mu": [0.0, 0.03], "n_th": [0.0, 2.0, 5.0]}, progress=False)
    assert ds.matrix.dims == ("mu", "n_th", "matrix_0", "matrix_1")
    np.testing.assert_array_equal(ds.matrix.sel(mu=0.03, n_th=5.0), [[0.0, 0.03], [0.03, 0.0]])
    np.testing.assert_array_equal(ds.baths.sel(mu=0.0, n_th=2.0), [2.0, 2.0])


def test_failing_points_are_flagged_and_neighbours_match():
    # gamma < 0 blows up (diverged); omega = 1e7 needs far more than max_steps steps.
    gamma = np.array([0.1, -1e3, 0.2, 0.3, 0.25])
    omega = np.array([1.0, 1.0, 1e7, 2.0, 1.5])
    ds = qs.sweep(averaged, MODEL, {"gamma": gamma, "omega": omega}, mode="zip",
                  batch_size=BATCH, progress=False)
    assert list(ds.status.values) == [
        "success", "diverged", "max_steps_reached", "success", "success"
    ]
    assert np.isnan(ds.x2[1]) and np.isnan(ds.x2[2]) and np.all(np.isnan(ds["mean"][1:3]))
    assert ds.num_steps[2] >= CONFIG.max_steps
    for k in (0, 3, 4):
        ref = averaged(at(MODEL, gamma=gamma[k], omega=omega[k]))
        np.testing.assert_allclose(ds.x2[k], ref.value["x2"], rtol=1e-12)
        np.testing.assert_allclose(ds["mean"][k], ref.value["mean"], rtol=1e-12, atol=1e-12)


def test_netcdf_round_trip(tmp_path):
    ds = qs.sweep(averaged, MODEL, {"gamma": [0.1, -1e3], "n_th": [0.0, 1.0]}, batch_size=BATCH,
                  progress=False)
    engines = ["scipy"] + (["h5netcdf"] if _has("h5py") else [])
    for engine in engines:
        path = tmp_path / f"sweep_{engine}.nc"
        ds.to_netcdf(str(path), engine=engine)
        with xr.open_dataset(str(path), engine=engine) as back:
            xr.testing.assert_equal(back.load(), ds)


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def test_second_call_does_not_recompile(caplog):
    axes = {"gamma": [0.1, 0.2, 0.3], "omega": [1.0, 1.5]}
    qs.sweep(averaged, MODEL, axes, batch_size=BATCH, progress=False)
    # New values, other parameters, as many chunks: the compiled chunk is reused.
    other = {"n_th": [0.4, 0.5, 0.6, 0.7, 0.8], "omega": [2.0]}
    with caplog.at_level(logging.WARNING), jax.log_compiles():
        ds = qs.sweep(averaged, MODEL, other, batch_size=BATCH, progress=False)
    compiled = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert compiled == []
    assert ds.x2.shape == (5, 1) and list(np.unique(ds.status)) == ["success"]


def test_progress_bar(capsys):
    qs.sweep(averaged, MODEL, {"gamma": [0.1, 0.2, 0.3]}, batch_size=BATCH, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "pt/s" in err
    qs.sweep(averaged, MODEL, {"gamma": [0.1, 0.2, 0.3]}, batch_size=BATCH, progress=False)
    assert capsys.readouterr().err == ""


class _Counter:
    calls = 0


def counted(model):
    _Counter.calls += 1
    return averaged(model)


@pytest.mark.parametrize(
    "axes, kwargs, match",
    [
        ({"kappa": [0.1]}, {}, r"'kappa' is not a parameter of DampedOscillator"),
        ({}, {}, "non-empty mapping"),
        ({"gamma": [[0.1, 0.2]]}, {}, r"axes\['gamma'\] must be a non-empty 1-D array.*\(1, 2\)"),
        ({"gamma": []}, {}, r"non-empty 1-D array of values; got shape \(0,\)"),
        ({"gamma": [0.1, np.nan]}, {}, "must be finite"),
        ({"gamma": ["a"]}, {}, "must hold numbers"),
        ({"gamma": [0.1, 0.2], "omega": [1.0]}, {"mode": "zip"}, "equal lengths"),
        ({"gamma": [0.1]}, {"mode": "outer"}, "mode must be"),
        ({"gamma": [0.1]}, {"batch_size": 0}, "batch_size must be a positive integer"),
        ({"gamma": [0.1]}, {"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"gamma": [0.1]}, {"devices": []}, "devices must be a non-empty"),
    ],
)
def test_bad_axes_raise_before_any_work(axes, kwargs, match):
    _Counter.calls = 0
    with pytest.raises(ValueError, match=match):
        qs.sweep(counted, MODEL, axes, progress=False, **kwargs)
    assert _Counter.calls == 0


def test_values_the_model_rejects():
    pair = qs.optomechanical_pair(
        omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02
    )
    _Counter.calls = 0
    with pytest.raises(ValueError, match=r"axes\['gamma'\].*rejects the value -0.1.*non-negative"):
        qs.sweep(counted, pair, {"gamma": [0.01, -0.1, 0.2]}, progress=False)
    with pytest.raises(ValueError, match=r"axes\['n_th'\].*rejects"):
        qs.sweep(counted, pair, {"E": [1.0], "n_th": [-1.0, 0.0]}, progress=False)
    assert _Counter.calls == 0


def test_output_names_must_not_clash():
    with pytest.raises(ValueError, match="distinct names"):
        qs.sweep(lambda m: {"status": m.gamma}, MODEL, {"gamma": [0.1]}, progress=False)
    with pytest.raises(ValueError, match="distinct names"):
        qs.sweep(lambda m: {"gamma": m.gamma}, MODEL, {"gamma": [0.1]}, progress=False)


# ----------------------------------------------------------------------------- checkpoints

CHECKPOINT_AXES = {"gamma": np.linspace(0.1, 0.4, 7), "n_th": [0.0, 1.0]}


def test_resume_from_finished_chunks_gives_identical_dataset(tmp_path):
    full = qs.sweep(averaged, MODEL, CHECKPOINT_AXES, batch_size=3, progress=False)
    path = tmp_path / "ckpt"
    first = qs.sweep(averaged, MODEL, CHECKPOINT_AXES, batch_size=3, progress=False,
                     checkpoint=path)
    assert first.identical(full)
    chunks = sorted(path.glob("chunk_*.npz"))
    assert len(chunks) == 5 and (path / "manifest.json").exists()
    # An interrupted run: chunks 1 and 3 never finished, one write was cut short.
    kept = {c.name: c.stat().st_mtime_ns for c in chunks}
    chunks[1].unlink()
    chunks[3].unlink()
    (path / "chunk_000001.npz.tmpXYZ.tmp").write_bytes(b"partial")
    resumed = qs.sweep(averaged, MODEL, CHECKPOINT_AXES, batch_size=3, progress=False,
                       checkpoint=path.as_posix())
    assert resumed.identical(full)
    # Finished chunks were read, not recomputed.
    for c in (chunks[0], chunks[2], chunks[4]):
        assert c.stat().st_mtime_ns == kept[c.name]
    assert chunks[1].exists() and chunks[3].exists()


def test_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "ckpt"
    qs.sweep(averaged, MODEL, CHECKPOINT_AXES, batch_size=3, progress=False, checkpoint=path)
    other_values = {"gamma": np.linspace(0.1, 0.5, 7), "n_th": [0.0, 1.0]}
    cases = [
        (averaged, MODEL, other_values, {}, "axes"),
        (averaged, MODEL, CHECKPOINT_AXES, {"mode": "zip"}, "axes"),
        (averaged, MODEL, CHECKPOINT_AXES, {"batch_size": 4}, "batch_size"),
        (averaged, at(MODEL, force=0.2), CHECKPOINT_AXES, {}, "model"),
        (slow_averaged, MODEL, CHECKPOINT_AXES, {}, "fn"),
    ]
    for fn, model, axes, kwargs, what in cases:
        kwargs = {"batch_size": 3, **kwargs}
        if kwargs.get("mode") == "zip":
            axes = {"gamma": axes["gamma"][:2], "n_th": axes["n_th"]}
        with pytest.raises(ValueError, match=f"different sweep \\(different {what}"):
            qs.sweep(fn, model, axes, progress=False, checkpoint=path, **kwargs)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.txt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="without a sweep manifest"):
        qs.sweep(averaged, MODEL, CHECKPOINT_AXES, progress=False, checkpoint=tmp_path / "other")


# Slower points (a long window), so that a sweep can be interrupted between chunks.
slow_averaged = jax.tree_util.Partial(window_average, jnp.array([1.0, 2000.0]))


SLOW_AXES = {"gamma": np.linspace(0.05, 0.5, 64)}

_KILLED_RUN = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
import qsync_jax as qs
from test_sweep import MODEL, SLOW_AXES, slow_averaged
qs.sweep(slow_averaged, MODEL, SLOW_AXES, batch_size=4, progress=False, checkpoint={path!r})
"""


def _python(code, env=None):
    """A fresh Python running ``code``; NPROC is left for qsync_jax to set, as for a user."""
    env = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
    env.pop("NPROC", None)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_finishes(proc, what, timeout=180):
    """``proc`` exits with 0 within ``timeout`` seconds (a hang fails the test, not the suite)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{what} hung")
    assert proc.returncode == 0, err


def test_killed_process_resumes_to_identical_dataset(tmp_path):
    path = tmp_path / "ckpt"
    proc = _python(_KILLED_RUN.format(path=str(path)))
    deadline = time.monotonic() + 240
    while not list(path.glob("chunk_*.npz")):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no chunk finished in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    finished = len(list(path.glob("chunk_*.npz")))
    assert 1 <= finished < 16, f"{finished} chunks: not interrupted mid-sweep"
    resumed = qs.sweep(slow_averaged, MODEL, SLOW_AXES, batch_size=4, progress=False,
                       checkpoint=path)
    full = qs.sweep(slow_averaged, MODEL, SLOW_AXES, batch_size=4, progress=False)
    assert resumed.identical(full)
    assert len(list(path.glob("chunk_*.npz"))) == 16


# ----------------------------------------------------------------------------- devices

SHARDED_AXES = {"gamma": np.linspace(0.05, 0.5, 9), "omega": [1.0, 2.5]}

_SHARDED_RUN = """
import jax
import qsync_jax as qs
qs.use_cpu_devices(4)
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
from test_sweep import BATCH, MODEL, SHARDED_AXES, averaged
assert len(jax.devices()) == 4, jax.devices()
ds = qs.sweep(averaged, MODEL, SHARDED_AXES, batch_size=BATCH, progress=False)
ds.to_netcdf({path!r}, engine="scipy")
"""


def test_sharded_matches_unsharded_on_four_cpu_devices(tmp_path):
    path = str(tmp_path / "sharded.nc")
    proc = _python(_SHARDED_RUN.format(path=path), env={"JAX_PLATFORMS": "cpu"})
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    single = qs.sweep(averaged, MODEL, SHARDED_AXES, batch_size=BATCH,
                      devices=jax.devices()[:1], progress=False)
    with xr.open_dataset(path, engine="scipy") as sharded:
        sharded = sharded.load()
    assert list(np.unique(sharded.status)) == ["success"]
    # Equal up to rounding: each device compiles its own (vectorized) code for its share.
    np.testing.assert_allclose(sharded.x2, single.x2, rtol=1e-11)
    np.testing.assert_allclose(sharded["mean"], single["mean"], rtol=1e-9, atol=1e-12)
    assert np.all(np.abs(sharded.num_steps - single.num_steps) <= 1)  # a borderline step


_SHARDED_LINALG_RUN = """
import functools, warnings
import jax
import numpy as np
import qsync_jax as qs
qs.use_cpu_devices(2)
jax.config.update("jax_enable_x64", True)
warnings.simplefilter("error")  # no warning about the thread pool
model = qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.2, gamma=0.5, xi=0.0, n_th=(1.0, 0.0))
fn = functools.partial(qs.solve_steady_state, throw=False)
ds = qs.sweep(fn, model, {{"xi": np.linspace(-0.5, 0.5, 2000)}}, mode="zip", progress=False)
ds.to_netcdf({path!r}, engine="scipy")
"""


def test_sharded_batched_linear_algebra_does_not_hang(tmp_path):
    # 1000 Lyapunov solves (16 × 16 LU) and eigenvalue problems per device: large enough for
    # jaxlib to split them over its thread pool, which deadlocked with a pool of 2 threads.
    path = str(tmp_path / "steady.nc")
    proc = _python(_SHARDED_LINALG_RUN.format(path=path), env={"JAX_PLATFORMS": "cpu"})
    _assert_finishes(proc, "a sharded sweep of steady states")
    with xr.open_dataset(path, engine="scipy") as sharded:
        sharded = sharded.load()
    model = qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.2, gamma=0.5, xi=0.0,
                                         n_th=(1.0, 0.0))
    for i in (0, 777, 1999):
        xi = float(sharded.xi[i])
        ref = qs.steady_state(at(model, xi=xi))
        np.testing.assert_allclose(sharded.state_cov[i], ref.cov, rtol=1e-10, atol=1e-13)
    assert list(np.unique(sharded.status)) == ["success"]


def test_warns_when_cpu_thread_pool_is_too_small(monkeypatch):
    from qsync_jax._devices import warn_if_pool_too_small

    cpu = jax.devices("cpu")[0]
    for pool, devices in ((4, [cpu, cpu]), (2, [cpu])):
        monkeypatch.setenv("NPROC", str(pool))
        with pytest.warns(RuntimeWarning, match="use_cpu_devices"):
            warn_if_pool_too_small(devices)
    for pool, devices in ((5, [cpu, cpu]), (3, [cpu])):
        monkeypatch.setenv("NPROC", str(pool))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warn_if_pool_too_small(devices)  # a thread left free: silent


_ONE_DEVICE_LINALG_RUN = """
import os
import jax
import qsync_jax as qs
jax.config.update("jax_enable_x64", True)
assert os.environ["NPROC"] == str(max(4, len(os.sched_getaffinity(0)))), os.environ["NPROC"]
model = qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.2, gamma=0.5, xi=0.0, n_th=(1.0, 0.0))
xis = jax.numpy.linspace(-0.5, 0.5, 15000)
states = jax.vmap(lambda xi: qs.steady_state(qs.CorrelatedBathOscillators(
    omega=(1.0, 1.2), g=0.2, gamma=0.5, xi=xi, n_th=(1.0, 0.0))))(xis)
assert bool(jax.numpy.all(jax.numpy.isfinite(states.cov)))
"""


def test_batched_linear_algebra_does_not_hang_on_one_device():
    # 15 000 steady states in one vmapped call (throw=True): hung 2 runs out of 2 with XLA's
    # default pool of 2 threads on a 2-core machine; importing qsync_jax sizes the pool.
    proc = _python(_ONE_DEVICE_LINALG_RUN, env={"JAX_PLATFORMS": "cpu"})
    _assert_finishes(proc, "vmapped steady states")


def test_import_keeps_a_pool_size_set_by_the_user():
    proc = _python("import os, qsync_jax; print(os.environ['NPROC'])", env={})
    assert proc.communicate(timeout=120)[0].strip() == str(max(4, len(os.sched_getaffinity(0))))
    env = {**os.environ, "PYTHONPATH": str(TESTS), "NPROC": "7"}
    out = subprocess.run([sys.executable, "-c", "import os, qsync_jax; print(os.environ['NPROC'])"],
                         env=env, capture_output=True, text=True, timeout=120).stdout
    assert out.strip() == "7"


def test_use_cpu_devices_schedules_each_device_on_one_thread():
    # XLA's concurrency-optimized schedule hands one device's work between the pool's threads;
    # use_cpu_devices turns it off (benchmarks/bench_sweep.py: CPU time / wall time), keeping
    # the user's other flags and a setting of that flag made by the user.
    from qsync_jax._devices import SEQUENTIAL_SCHEDULE

    code = "import os, qsync_jax as qs; qs.use_cpu_devices(2); print(os.environ['XLA_FLAGS'])"
    for preset, expected in (
        (None, SEQUENTIAL_SCHEDULE),
        ("--xla_cpu_enable_fast_math=false",
         f"--xla_cpu_enable_fast_math=false {SEQUENTIAL_SCHEDULE}"),
        ("--xla_cpu_enable_concurrency_optimized_scheduler=true",
         "--xla_cpu_enable_concurrency_optimized_scheduler=true"),
    ):
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        env = {**env, "PYTHONPATH": str(TESTS), **({"XLA_FLAGS": preset} if preset else {})}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == expected


def test_use_cpu_devices_rejects_bad_input_and_late_calls():
    for bad in (0, -1, 2.0, True, "2"):
        with pytest.raises(ValueError, match="positive integer"):
            qs.use_cpu_devices(bad)
    jnp.ones(1).block_until_ready()  # backends are running
    with pytest.raises(RuntimeError, match="before JAX runs anything"):
        qs.use_cpu_devices(2)


def test_partial_arrays_change_without_recompiling(caplog):
    axes = {"gamma": [0.1, 0.3]}
    first = qs.sweep(averaged, MODEL, axes, batch_size=BATCH, progress=False)
    longer = jax.tree_util.Partial(window_average, jnp.array([2.0, 9.0]))
    with caplog.at_level(logging.WARNING), jax.log_compiles():
        second = qs.sweep(longer, MODEL, axes, batch_size=BATCH, progress=False)
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
    ref = longer(at(MODEL, gamma=0.3))
    np.testing.assert_allclose(second.x2[1], ref.value["x2"], rtol=1e-12)
    assert np.all(second.num_steps > first.num_steps)


@pytest.mark.slow
def test_optomechanical_sweep_matches_single_solves():
    pair = qs.optomechanical_pair(
        omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02
    )

    def measures(t, state):
        return {"S_c": qs.complete_sync(state, 1, 3), "S_p": qs.phase_sync(state, 1, 3)}

    def fn(model):
        return qs.time_average(model, measures, (50.0, 100.0), throw=False)

    E = np.array([40.0, 48.0, 56.0])
    ds = qs.sweep(fn, pair, {"E": E}, progress=False)
    for k, value in enumerate(E):
        ref = fn(at(pair, E=jnp.full(2, value)))
        np.testing.assert_allclose(ds.S_c[k], ref.value["S_c"], rtol=1e-10)
        np.testing.assert_allclose(ds.S_p[k], ref.value["S_p"], rtol=1e-10)


# ----------------------------------------------------------------------------- entries of arrays

PAIR = dict(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02, n_th=0.0)
PROBE = np.random.default_rng(1).normal(size=8)  # a mean at which to compare vector fields


def dynamics(model):
    """Everything that defines a Gaussian model's dynamics, at the state PROBE."""
    u = jnp.asarray(PROBE[: 2 * model.n_modes])
    return {"f": model.mean_field(0.0, u), "A": model.drift(0.0, u),
            "D": model.diffusion(0.0, u), "bath": model.bath_occupations()}


def assert_points_equal_direct(ds, build):
    """Every point of ``ds`` (zip mode) equals ``dynamics`` of ``build(point's values)``
    (to rounding: vmapped and single products may round differently)."""
    for k in range(ds.sizes["point"]):
        values = {name: float(ds[name][k]) for name in ds.coords if name != "point"}
        direct = dynamics(build(**values))
        for name, ref in direct.items():
            np.testing.assert_allclose(ds[name][k], ref, rtol=1e-13, atol=1e-15,
                                       err_msg=f"{name} at {values}")


def built(constructor, args, **values):
    """``constructor(**args)`` with ``values`` replaced, built directly; keys "name" or
    "name[i]" (an entry of a two-entry parameter)."""
    args = dict(args)
    for key, value in values.items():
        field, _, index = key.partition("[")
        if index:
            entries = np.array(np.broadcast_to(args[field], (2,)), dtype=float)
            entries[int(index[:-1])] = value
            args[field] = entries
        else:
            args[field] = value
    return constructor(**args)


BATH_ARGS = dict(omega=(1.0, 1.2), g=0.1, gamma=0.5, xi=0.2, n_th=(0.0, 1.0))
bath_at = functools.partial(built, qs.CorrelatedBathOscillators, BATH_ARGS)
BATH = bath_at()


def test_entry_axes_equal_directly_built_models():
    axes = {"omega[1]": [0.8, 1.3], "n_th[0]": [2.0, 0.5], "xi": [-0.3, 0.6]}
    ds = qs.sweep(dynamics, BATH, axes, mode="zip", progress=False)
    assert_points_equal_direct(ds, bath_at)
    grid = qs.sweep(dynamics, BATH, {"omega[-1]": [0.8, 1.3], "n_th[0]": [0.0, 3.0]},
                    progress=False)
    assert grid.A.dims == ("omega[-1]", "n_th[0]", "A_0", "A_1")
    np.testing.assert_array_equal(grid.bath.sel({"n_th[0]": 3.0}), [[3.0, 1.0]] * 2)
    ref = dynamics(bath_at(**{"omega[1]": 1.3, "n_th[0]": 3.0}))["A"]
    np.testing.assert_allclose(grid.A.sel({"omega[-1]": 1.3, "n_th[0]": 3.0}), ref, rtol=1e-13)


@pytest.mark.parametrize("key, base_omega", [
    ("omega[1]", (1.0, 1.005)),
    ("omega", 1.0),
    ("E[0]", (1.0, 1.005)),
    ("mu", (1.0, 1.005)),
])
def test_pair_sweep_point_equals_directly_built_pair(key, base_omega):
    # Sweeping ω must move the detuning with it (Δ = ω by default), as the constructor does.
    base = {**PAIR, "omega": base_omega}
    values = {"omega[1]": [0.98, 1.2], "omega": [0.9, 1.2], "E[0]": [30.0, 60.0],
              "mu": [0.0, 0.05]}[key]
    ds = qs.sweep(dynamics, qs.optomechanical_pair(**base), {key: values}, mode="zip",
                  progress=False)
    assert_points_equal_direct(ds, functools.partial(built, qs.optomechanical_pair, base))


def test_broadcast_over_non_uniform_base_is_refused():
    _Counter.calls = 0
    with pytest.raises(ValueError, match=r"axes\['omega'\].*base model's omega = \[1.0, 1.2\] "
                                         r"is not uniform.*'omega\[0\]'"):
        qs.sweep(counted, BATH, {"omega": [1.0, 1.1]}, progress=False)
    # Per-entry constraints are checked by the constructor: a negative occupation, an
    # asymmetric coupling graph.
    with pytest.raises(ValueError, match=r"axes\['n_th\[1\]'\].*rejects the value -1.0"):
        qs.sweep(counted, BATH, {"n_th[1]": [0.0, -1.0]}, progress=False)
    with pytest.raises(ValueError, match=r"axes\['coupling\[0, 1\]'\].*symmetric"):
        qs.sweep(counted, qs.optomechanical_pair(**PAIR), {"coupling[0, 1]": [0.5, 1.0]},
                 progress=False)
    assert _Counter.calls == 0


@pytest.mark.parametrize("axes, match", [
    ({"omega[2]": [1.0]}, r"'omega\[2\]' is not an entry of 'omega', which has shape \(2,\)"),
    ({"g[0]": [1.0]}, r"not an entry of 'g'.*a scalar"),
    ({"omega[x]": [1.0]}, r"must index 'omega' with integers"),
    ({"omega[0][1]": [1.0]}, r"neither a parameter name nor one entry"),
    ({"omega[0, 0]": [1.0]}, r"not an entry of 'omega'"),
    ({"omega[]": [1.0]}, r"must index 'omega' with integers"),
    ({"kappa[0]": [1.0]}, r"'kappa' is not a parameter"),
    ({"n_th": [1.0], "n_th[1]": [2.0]}, r"'n_th' and 'n_th\[1\]' both set 'n_th'"),
    ({"omega[1]": [1.0], "omega[-1]": [2.0]}, r"both set 'omega'\[1\]"),
    ({3: [1.0]}, r"axes keys must be strings"),
    ({"xi": [0.1 + 1j]}, r"must be real"),
    ({"xi": [np.inf]}, r"must be finite"),
])
def test_bad_entry_axes_raise_before_any_work(axes, match):
    _Counter.calls = 0
    with pytest.raises(ValueError, match=match):
        qs.sweep(counted, BATH, axes, progress=False)
    assert _Counter.calls == 0


# ----------------------------------------------------------------------------- the Dataset


def steady(model):
    return qs.solve_steady_state(model, throw=False)


def test_dataset_dimensions_attributes_and_netcdf(tmp_path):
    ds = qs.sweep(steady, BATH, {"omega[1]": [1.0, 1.2], "xi": [0.0, 0.5, 1.0]},
                  progress=False)
    assert ds.state_mean.dims == ("omega[1]", "xi", "quadrature")
    assert ds.state_cov.dims == ("omega[1]", "xi", "quadrature_i", "quadrature_j")
    assert list(ds.quadrature.values) == ["x0", "p0", "x1", "p1"]
    ref = qs.steady_state(bath_at(**{"omega[1]": 1.2, "xi": 0.5}))
    np.testing.assert_allclose(ds.state_cov.sel({"omega[1]": 1.2, "xi": 0.5}), ref.cov,
                               rtol=1e-12)
    np.testing.assert_allclose(
        ds.state_cov.sel({"omega[1]": 1.2, "xi": 0.5, "quadrature_i": "x1", "quadrature_j": "p0"}),
        ref.cov[2, 1], rtol=1e-12)
    # Resonant, equal baths, ξ = 1: a dark mode, no steady state — NaN with its status.
    assert ds.status.sel({"omega[1]": 1.0, "xi": 1.0}) == "no_steady_state"
    assert np.all(np.isnan(ds.state_cov.sel({"omega[1]": 1.0, "xi": 1.0})))
    assert ds.attrs["model"] == "CorrelatedBathOscillators"
    np.testing.assert_array_equal(ds.attrs["model.omega"], [1.0, 1.2])
    assert ds.attrs["model.xi"] == 0.2
    assert ds.attrs["qsync_jax_version"] and ds.attrs["jax_version"] == jax.__version__
    pair = qs.sweep(lambda m: {"M": m.mu_matrix, "S": jnp.stack([m.E, m.kappa])},
                    qs.optomechanical_pair(**PAIR), {"mu": [0.0, 0.1]},
                    dims={"M": ("site_i", "site_j"), "S": ("quantity", "site_i")},
                    progress=False)
    assert pair.M.dims == ("mu", "site_i", "site_j") and pair.S.dims == ("mu", "quantity",
                                                                          "site_i")
    assert pair.attrs["model.coupling"] == "[[0.0, 1.0], [1.0, 0.0]]"
    np.testing.assert_array_equal(pair.attrs["model.E"], [48.0, 48.0])
    for engine in ("scipy", "h5netcdf"):
        for name, data in (("bath", ds), ("pair", pair)):
            path = tmp_path / f"{name}_{engine}.nc"
            data.to_netcdf(path, engine=engine)
            with xr.open_dataset(path, engine=engine) as back:
                xr.testing.assert_identical(back.load(), data)


@pytest.mark.parametrize("dims, match", [
    ({"nope": ("a",)}, r"dims: 'nope' is not an output of fn"),
    ({"M": ("a",)}, r"dims\['M'\] = \('a',\) names 1 axes, but the output 'M' has 2"),
    ({"M": ("a", "a")}, r"must be distinct"),
    ({"M": ("a", 3)}, r"dims\['M'\] must be a dimension name"),
    ({"M": ("mu", "b")}, r"clashes with a sweep dimension"),
    ({"M": ("a", "b"), "E": "a"}, r"dimension 'a' has size 3 in output 'E' but 2 in 'M'"),
    (["M"], r"dims must be a mapping"),
])
def test_bad_dims_raise_before_any_work(dims, match):
    def fn(model):
        _Counter.calls += 1
        return {"M": model.mu_matrix, "E": jnp.concatenate([model.E, model.E[:1]])}

    _Counter.calls = 0
    with pytest.raises(ValueError, match=match):
        qs.sweep(fn, qs.optomechanical_pair(**PAIR), {"mu": [0.1]}, dims=dims, progress=False)
    assert _Counter.calls == 1  # traced once to learn the outputs, never run


# ----------------------------------------------------------------------------- fingerprints

FN_SOURCE = """
import qsync_jax as qs

CONFIG = qs.SolverConfig(rtol=1e-8, atol=1e-8)


def helper(t, state):
    return {"x2": state.cov[0, 0]}


def fn(model):
    return qs.time_average(model, helper, (0.0, 2.0), config=CONFIG, throw=False)
"""


def _fn_from(tmp_path, name, source, fn_name="fn", run_name=None):
    """``fn_name`` of ``source`` written to ``<name>.py``: imported as module ``name``, or run
    as ``run_name`` (e.g. "__main__", as a script would be)."""
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    if run_name is not None:
        return runpy.run_path(str(path), run_name=run_name)[fn_name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, fn_name)


def test_checkpoint_fingerprints_the_program_fn_runs(tmp_path):
    path = tmp_path / "ckpt"
    axes = {"gamma": [0.1, 0.2, 0.3], "n_th": [0.0, 1.0]}
    first = qs.sweep(_fn_from(tmp_path, "user_sweep", FN_SOURCE), MODEL, axes, batch_size=BATCH,
                     progress=False, checkpoint=path)
    written = {c: c.stat().st_mtime_ns for c in path.glob("chunk_*.npz")}
    # The same computation: run as a script (__main__), or renamed with a renamed helper.
    renamed = FN_SOURCE.replace("helper", "x_variance").replace("def fn(", "def average(")
    same = [_fn_from(tmp_path, "script", FN_SOURCE, run_name="__main__"),
            _fn_from(tmp_path, "renamed", renamed, fn_name="average")]
    for fn in same:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            resumed = qs.sweep(fn, MODEL, axes, batch_size=BATCH, progress=False,
                               checkpoint=path)
        assert resumed.identical(first)
        assert {c: c.stat().st_mtime_ns for c in path.glob("chunk_*.npz")} == written
    # A changed global (the tolerance) or helper (another measure) changes the results: refused.
    # (A Partial's changed window: test_foreign_checkpoint_is_refused.)
    changed = [FN_SOURCE.replace("rtol=1e-8", "rtol=1e-9"),
               FN_SOURCE.replace("state.cov[0, 0]", "state.cov[1, 1]")]
    for k, source in enumerate(changed):
        with pytest.raises(ValueError, match=r"different sweep \(different fn\).*the program"):
            qs.sweep(_fn_from(tmp_path, f"changed{k}", source), MODEL, axes, batch_size=BATCH,
                     progress=False, checkpoint=path)


# ----------------------------------------------------------------------------- damaged chunks

DAMAGE_AXES = {"xi": np.linspace(-0.5, 0.5, 10)}  # chunks of 3: points 0-2, 3-5, 6-8, 9


def _steady_sweep(path=None):
    return qs.sweep(steady, BATH, DAMAGE_AXES, batch_size=3, progress=False, checkpoint=path)


@pytest.fixture(scope="module")
def finished_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("finished") / "ckpt"
    return _steady_sweep(path), path


def _chunk(path, k):
    with np.load(path / f"chunk_{k:06d}.npz") as data:
        return {name: data[name] for name in data.files}


def _record(path, k, points=None):
    """Record chunk ``k``'s file as it is now (as a faulty writer would: checksum matches)."""
    file = path / f"chunk_{k:06d}.npz"
    record = {"chunk": k, "points": points or [3 * k, min(3 * k + 3, 10)],
              "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    with open(path / "chunks.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def _write_recorded(path, k, arrays, points=None):
    with open(path / f"chunk_{k:06d}.npz", "wb") as f:
        np.savez(f, **arrays)
    _record(path, k, points)


def _garbage_recorded(path):
    (path / "chunk_000001.npz").write_bytes(b"x" * 99)
    _record(path, 1)


def _records_without(path, k, replacement=None):
    lines = (path / "chunks.jsonl").read_text().splitlines()
    kept = [line if json.loads(line)["chunk"] != k else replacement for line in lines]
    (path / "chunks.jsonl").write_text("".join(f"{line}\n" for line in kept if line is not None))


def _edited(path, k, **changes):
    arrays = _chunk(path, k)
    for name, change in changes.items():
        if change is None:
            del arrays[name]
        else:
            arrays[name] = change(arrays[name])
    _write_recorded(path, k, arrays)


DAMAGE = {
    "copied over another": (
        lambda p: shutil.copy(p / "chunk_000000.npz", p / "chunk_000001.npz"), "checksum"),
    "truncated": (
        lambda p: (p / "chunk_000001.npz").write_bytes(
            (p / "chunk_000001.npz").read_bytes()[:200]), "checksum"),
    "garbage, recorded": (_garbage_recorded, "cannot be read"),
    "an output missing": (
        lambda p: _edited(p, 1, spectral_abscissa=None), r"lacks the arrays \['spectral_absc"),
    "fewer rows": (
        lambda p: _edited(p, 1, **{n: (lambda a: a[:2]) for n in _chunk(p, 1)}),
        r"shape \(2,.*expected shape \(3,"),
    "bogus status names": (
        lambda p: _edited(p, 1, status=lambda s: np.array(["done"] * 3)),
        r"unknown status names \['done'\]"),
    "NaN marked success": (
        lambda p: _edited(p, 1, state_cov=lambda c: c * np.nan),
        "non-finite values of 'state_cov' marked success"),
    "moved with its record": (
        lambda p: _write_recorded(p, 1, _chunk(p, 0), points=[0, 3]),
        r"recorded for points \[0, 3\], but chunk 1 holds points \[3, 6\)"),
    "unrecorded": (lambda p: _records_without(p, 1), "has no record in chunks.jsonl"),
    "record damaged": (
        lambda p: _records_without(p, 1, '{"chunk": 1, "poi'), "has no record"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_chunk_is_recomputed_with_a_warning(damage, finished_checkpoint, tmp_path):
    full, finished = finished_checkpoint
    path = tmp_path / "ckpt"
    shutil.copytree(finished, path)
    corrupt, reason = DAMAGE[damage]
    corrupt(path)
    with pytest.warns(RuntimeWarning, match=rf"chunk_000001\.npz' .*{reason}.*recomputing it"):
        resumed = _steady_sweep(path)
    assert resumed.identical(full)
    with warnings.catch_warnings():  # the chunk was rewritten and recorded: clean from now on
        warnings.simplefilter("error")
        assert _steady_sweep(path).identical(full)


@pytest.mark.parametrize("manifest, match", [
    (b"\x00garbage{", "damaged"),
    (b'{"format": 2}', "KeyError"),
    (b'{"format": 1, "sweep": {}}', "format 1, expected 2"),
    (b"[]", "damaged"),
])
def test_damaged_manifest_is_refused_naming_the_file(manifest, match, finished_checkpoint,
                                                     tmp_path):
    path = tmp_path / "ckpt"
    shutil.copytree(finished_checkpoint[1], path)
    (path / "manifest.json").write_bytes(manifest)
    with pytest.raises(ValueError, match=rf"manifest.json'.*{match}.*delete '.*ckpt' to start"):
        _steady_sweep(path)


def test_an_append_cut_short_does_not_hide_later_records(finished_checkpoint, tmp_path):
    full, finished = finished_checkpoint
    path = tmp_path / "ckpt"
    shutil.copytree(finished, path)
    _records_without(path, 3)
    (path / "chunk_000003.npz").unlink()
    with open(path / "chunks.jsonl", "a") as f:
        f.write('{"chunk": 3, "po')  # killed while appending
    assert _steady_sweep(path).identical(full)  # recomputes chunk 3, records it on a new line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _steady_sweep(path).identical(full)


def test_points_never_computed_cannot_reach_the_dataset():
    from qsync_jax._sweep._dataset import Results, layout

    shapes = ({"x": jax.ShapeDtypeStruct((1, 2), float)}, None, None, None)
    results = Results(layout(shapes, ("gamma",), None), 3)
    assert np.all(np.isnan(results.arrays["x"]))  # floats start as NaN, not np.empty
    results.put(0, {"x": np.ones((2, 2)), "status": np.array(["success"] * 2),
                    "num_steps": np.zeros(2, np.int64)})
    with pytest.raises(RuntimeError, match=r"points \[2\] were never computed"):
        results.dataset((), (3,), "zip", MODEL)


# ----------------------------------------------------------------------------- properties

PROPERTY = settings(max_examples=8, deadline=None, phases=(Phase.explicit, Phase.generate))


@PROPERTY
@given(xis=st.lists(st.floats(-0.9, 0.9), min_size=4, max_size=11), stop=st.integers(0, 2),
       lost=st.sets(st.integers(0, 2)))
def test_property_interrupted_and_resumed_equals_uninterrupted(xis, stop, lost):
    axes = {"xi": np.asarray(xis)}
    reference = qs.sweep(steady, BATH, axes, batch_size=4, progress=False)
    n_chunks = -(-len(xis) // 4)
    stop = min(stop, n_chunks - 1)
    save = Checkpoint.save

    def interrupted_save(self, k, arrays):
        if len(list(self.path.glob("chunk_*.npz"))) == stop:
            raise KeyboardInterrupt
        save(self, k, arrays)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ckpt"
        with mock.patch.object(Checkpoint, "save", interrupted_save):
            with pytest.raises(KeyboardInterrupt):
                qs.sweep(steady, BATH, axes, batch_size=4, progress=False, checkpoint=path)
        for k in lost:  # finished chunks lost as well
            (path / f"chunk_{k:06d}.npz").unlink(missing_ok=True)
        resumed = qs.sweep(steady, BATH, axes, batch_size=4, progress=False, checkpoint=path)
    assert resumed.identical(reference)


def _values(draw, ranges, n=2):
    return {key: np.asarray(draw(st.lists(st.floats(lo, hi), min_size=n, max_size=n)))
            for key, (lo, hi) in ranges.items()}


@PROPERTY
@given(st.data())
def test_property_bath_point_equals_directly_built_model(data):
    ranges = {"omega[0]": (-3.0, 3.0), "omega[1]": (-3.0, 3.0), "g": (-1.0, 1.0),
              "gamma": (0.01, 2.0), "xi": (-1.0, 1.0), "n_th[0]": (0.0, 10.0),
              "n_th[1]": (0.0, 10.0)}
    axes = _values(data.draw, ranges)
    ds = qs.sweep(dynamics, BATH, axes, mode="zip", progress=False)
    assert_points_equal_direct(ds, bath_at)


@pytest.mark.parametrize("swept", [
    ("E", "kappa", "gamma", "g", "n_th"),
    ("omega",),
])
@PROPERTY
@given(data=st.data())
def test_property_pair_point_equals_directly_built_model(swept, data):
    ranges = {"omega": (0.5, 2.0), "E": (0.0, 80.0), "kappa": (0.0, 1.0), "gamma": (0.0, 0.1),
              "g": (-0.01, 0.01), "n_th": (0.0, 10.0)}
    entries = {f"{name}[{i}]": ranges[name] for name in swept for i in (0, 1)}
    axes = _values(data.draw, {**entries, "mu": (-0.1, 0.1)})
    ds = qs.sweep(dynamics, qs.optomechanical_pair(**PAIR), axes, mode="zip", progress=False)
    assert_points_equal_direct(ds, functools.partial(built, qs.optomechanical_pair, PAIR))


class _Rates(eqx.Module):
    """A stand-in model whose fields declare units (as field metadata)."""

    gamma: jax.Array = eqx.field(converter=jnp.asarray, metadata={"units": "1/time"})
    n: jax.Array = eqx.field(converter=jnp.asarray,
                             metadata={"parameter": {"units": "quanta", "doc": "occupation"}})
    scale: float = eqx.field(static=True, default=2.0)


def test_units_of_swept_and_base_parameters():
    ds = qs.sweep(lambda m: m.scale * m.gamma * m.n, _Rates(0.5, 1.0), {"gamma": [0.1, 0.2]},
                  progress=False)
    assert ds.gamma.attrs["units"] == "1/time"
    assert ds.attrs["model.n.units"] == "quanta" and ds.attrs["model.scale"] == 2.0
    np.testing.assert_allclose(ds.output, [0.2, 0.4])


class _StatusInside(eqx.Module):
    value: jax.Array
    status: qs.Status


def test_a_status_in_plain_outputs_is_refused():
    # Recorded as a number, its failures would be missed: results must follow the protocol.
    def fn(model):
        _Counter.calls += 1
        return _StatusInside(model.gamma, qs.Status.success)

    _Counter.calls = 0
    with pytest.raises(ValueError, match=r"Status \(\.status\) inside a plain pytree.*"
                                         r"subclass of qsync_jax.AbstractResult"):
        qs.sweep(fn, MODEL, {"gamma": [0.1]}, progress=False)
    assert _Counter.calls == 1  # traced, never run
