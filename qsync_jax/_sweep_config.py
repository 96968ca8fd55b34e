"""Sweeps described in a TOML file (``qsync sweep CONFIG.toml``).

Example (every key but ``[sweep.axes]`` has a default)::

    output = "mu_sweep.nc"

    [model]                 # kind = "pair" | "ring" | "correlated-bath"; other keys are the
    kind = "pair"           # constructor's arguments (qs.optomechanical_pair, ...)
    omega = [1.0, 1.005]
    E = 48.0

    [measure]               # pair/ring: time averages over `window` of S_c, S_p, log-negativity
    window = [1000.0, 2000.0]   # and discord for each mode pair; correlated-bath: steady state
    pairs = [[1, 3]]
    rtol = 1e-8
    atol = 1e-8

    [sweep]
    mode = "grid"           # or "zip"
    batch_size = 256

    [sweep.axes]            # a list of values, or {start, stop, num} for evenly spaced values
    mu = {start = 0.0, stop = 0.08, num = 17}
    n_th = [0.0, 1.0, 10.0]
"""

import functools
import pathlib
import tomllib

import jax
import jax.numpy as jnp
import numpy as np

import qsync_jax as qs

PAIR_DEFAULTS = dict(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02,
                     n_th=0.0)
BATH_DEFAULTS = dict(omega=(1.0, 1.2), g=0.0, gamma=0.5, xi=0.0, n_th=(0.0, 0.0))


def _time_averages(window, config, measures, model):
    return qs.time_average(model, measures, window, config=config, throw=False)


def _axis_values(name: str, spec) -> np.ndarray:
    if isinstance(spec, dict):
        unknown = set(spec) - {"start", "stop", "num"}
        if unknown or not {"start", "stop", "num"} <= set(spec):
            raise ValueError(f"sweep.axes.{name}: use a list or {{start, stop, num}}; got {spec}")
        return np.linspace(spec["start"], spec["stop"], int(spec["num"]))
    return np.asarray(spec, dtype=float)


def build_model(section: dict):
    """The model of a ``[model]`` table."""
    section = dict(section)
    kind = section.pop("kind", "pair")
    if kind == "pair":
        return qs.optomechanical_pair(**{**PAIR_DEFAULTS, **section})
    if kind == "ring":
        n_sites = section.pop("n_sites", 20)
        return qs.optomechanical_ring(n_sites, **{**PAIR_DEFAULTS, "omega": 1.0, **section})
    if kind == "correlated-bath":
        return qs.CorrelatedBathOscillators(**{**BATH_DEFAULTS, **section})
    raise ValueError(f'model.kind must be "pair", "ring" or "correlated-bath"; got {kind!r}')


def build_measure(kind: str, section: dict):
    """``fn(model)`` for :func:`qsync_jax.sweep` from a ``[measure]`` table."""
    if kind == "correlated-bath":
        from ._reproduce.bittner2025 import steady_measures

        return steady_measures
    window = jnp.asarray(section.get("window", (1000.0, 2000.0)), dtype=float)
    pairs = [tuple(p) for p in section.get("pairs", [(1, 3)])]
    config = qs.SolverConfig(solver=qs.Unrolled(), rtol=section.get("rtol", 1e-8),
                             atol=section.get("atol", 1e-8))
    measures = qs.SyncMeasures(pairs, correlations=True)
    return jax.tree_util.Partial(functools.partial(_time_averages, config=config,
                                                   measures=measures), window)


def run_sweep_config(path: pathlib.Path, *, out=None, progress=True) -> pathlib.Path:
    """Run the sweep of TOML file ``path``; write and return the NetCDF path."""
    with open(path, "rb") as f:
        config = tomllib.load(f)
    unknown = set(config) - {"output", "model", "measure", "sweep"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)}")
    model_section = config.get("model", {})
    kind = model_section.get("kind", "pair")
    model = build_model(model_section)
    fn = build_measure(kind, config.get("measure", {}))
    sweep_section = dict(config.get("sweep", {}))
    axes = {name: _axis_values(name, spec) for name, spec in sweep_section.pop("axes", {}).items()}
    if not axes:
        raise ValueError(f"{path}: [sweep.axes] must name at least one parameter")
    ds = qs.sweep(fn, model, axes, progress=progress, **sweep_section)
    target = pathlib.Path(out or config.get("output", path.with_suffix(".nc").name))
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.attrs["config"] = path.read_text()
    ds.to_netcdf(target, engine="h5netcdf")
    return target
