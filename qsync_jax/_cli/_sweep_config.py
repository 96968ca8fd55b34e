"""The TOML format of ``qsync sweep``, checked whole before any work.

Example (every key but ``[sweep.axes]`` has a default)::

    output = "mu_sweep.nc"

    [model]                 # kind = "pair" | "ring" | "correlated-bath"; other keys are the
    kind = "pair"           # constructor's arguments (qs.optomechanical_pair, ...)
    omega = [1.0, 1.005]
    E = 48.0

    [measure]               # pair/ring: time averages over `window` of S_c, S_p, log-negativity
    window = [1000.0, 2000.0]   # and discord for each mode pair; correlated-bath: steady state
    pairs = [[1, 3]]            # (Rényi-2 measures, log-negativity, exchange current; no keys)
    rtol = 1e-8
    atol = 1e-8

    [sweep]                 # the keyword arguments of qs.sweep: mode, batch_size, checkpoint
    mode = "grid"           # or "zip"
    batch_size = 256

    [sweep.axes]            # a list of values, or {start, stop, num} for evenly spaced values
    mu = {start = 0.0, stop = 0.08, num = 17}
    n_th = [0.0, 1.0, 10.0]

Checked before any work: every key (an unknown one is named with the closest valid one), every
value's type (counts are integers), the parameters (by the model's constructor, for the base
model and for the smallest and largest value of each axis), the window, pairs and tolerances.
"""

import difflib
import functools
import inspect
import pathlib
import tomllib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import qsync_jax as qs

from . import _models

MEASURE_KEYS = ("window", "pairs", "rtol", "atol")
MEASURE_DEFAULTS = dict(window=[1000.0, 2000.0], pairs=[[1, 3]], rtol=1e-8, atol=1e-8)
_NOT_SWEPT = ("kind", "n_sites", "mean_field_approx")  # structure, not array leaves
_SWEEP_OPTIONS = [p.name for p in inspect.signature(qs.sweep).parameters.values()
                  if p.kind is p.KEYWORD_ONLY and p.name not in ("devices", "progress")]


class SweepPlan(NamedTuple):
    """What ``qsync sweep`` runs: ``qs.sweep(fn, model, axes, **options)``, written to output."""

    model: Any
    fn: Callable
    axes: dict[str, np.ndarray]
    options: dict
    output: str


def _time_averages(window, model, *, config, measures):
    return qs.time_average(model, measures, window, config=config, throw=False)


def _steady_measures(model):
    from .._reproduce.bittner2025 import steady_measures

    return steady_measures(model)


def _check_keys(where: str, table, valid) -> dict:
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table; got {table!r}")
    for key in table if valid is not None else ():
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
            raise ValueError(f"unknown key {key!r} in {where}; {hint}")
    return table


def _numbers(where: str, value) -> np.ndarray:
    """A number or a (nested) list of numbers, as floats; strings, booleans, tables refused."""
    def ok(v):
        if isinstance(v, list):
            return len(v) > 0 and all(ok(x) for x in v)
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not ok(value):
        raise ValueError(f"{where} must be a number or a list of numbers; got {value!r}")
    try:
        return np.asarray(value, dtype=float)
    except ValueError:
        raise ValueError(f"{where} must be a rectangular list of numbers; got {value!r}") from None


def _finite(where: str, value) -> np.ndarray:
    values = _numbers(where, value)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where} must be finite; got {value!r}")
    return values


def _integer(where: str, value, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{where} must be an integer >= {minimum}; got {value!r}")
    return value


def _model_params(kind: str, section: dict) -> dict:
    params = {}
    for name, value in section.items():
        where = f"model.{name}"
        if name == "n_sites":
            params[name] = _integer(where, value, 3)
        elif name == "mean_field_approx":
            if not isinstance(value, bool):
                raise ValueError(f"{where} must be true or false; got {value!r}")
            params[name] = value
        else:
            params[name] = _numbers(where, value).tolist()
    return params


def _axis_values(name: str, spec) -> np.ndarray:
    where = f"sweep.axes.{name}"
    if isinstance(spec, dict):
        _check_keys(where, spec, ["start", "stop", "num"])
        missing = {"start", "stop", "num"} - set(spec)
        if missing:
            raise ValueError(f"{where} needs start, stop and num; missing {sorted(missing)}")
        start, stop = (float(_finite(f"{where}.{k}", spec[k])) for k in ("start", "stop"))
        return np.linspace(start, stop, _integer(f"{where}.num", spec["num"], 1))
    values = _finite(where, spec)
    if values.ndim != 1:
        raise ValueError(f"{where} must be a list of numbers or {{start, stop, num}}; got {spec!r}")
    return values


def _axes(kind: str, section, params: dict) -> dict[str, np.ndarray]:
    sweepable = [n for n in _models.parameter_names(kind) if n not in _NOT_SWEPT]
    _check_keys("sweep.axes", section, sweepable)
    if not section:
        raise ValueError("[sweep.axes] must name at least one parameter")
    axes = {name: _axis_values(name, spec) for name, spec in section.items()}
    for name, values in axes.items():  # the constructor checks the range of each axis
        for value in (values.min(), values.max()):
            _models.build(kind, params | {name: float(value)})
    return axes


def _measure(kind: str, section: dict, model) -> Callable:
    if kind == "correlated-bath":
        _check_keys("measure (none for the steady state of correlated-bath)", section, [])
        return _steady_measures
    _check_keys("measure", section, list(MEASURE_KEYS))
    section = MEASURE_DEFAULTS | section
    window = _finite("measure.window", section["window"])
    if window.shape != (2,) or not 0 <= window[0] < window[1]:
        raise ValueError(f"measure.window must be [t_a, t_b] with 0 <= t_a < t_b; got "
                         f"{section['window']!r}")
    pairs = section["pairs"]
    n = model.n_modes
    if not (isinstance(pairs, list) and pairs and all(
            isinstance(p, list) and len(p) == 2
            and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in p)
            and p[0] != p[1] for p in pairs)):
        raise ValueError(f"measure.pairs must be a list of [i, j] pairs of distinct mode indices "
                         f"0 <= i, j < {n}; got {pairs!r}")
    tol = {k: float(_finite(f"measure.{k}", section[k])) for k in ("rtol", "atol")}
    if not all(v > 0 and np.ndim(section[k]) == 0 for k, v in tol.items()):
        raise ValueError(f"measure.rtol and measure.atol must be numbers > 0; got {tol}")
    config = qs.SolverConfig(**tol)
    measures = qs.SyncMeasures([tuple(p) for p in pairs], correlations=True)
    return jax.tree_util.Partial(
        functools.partial(_time_averages, config=config, measures=measures),
        jnp.asarray(window),
    )


def _sweep_options(section: dict) -> dict:
    options = {k: v for k, v in section.items() if k != "axes"}
    if "batch_size" in options:
        _integer("sweep.batch_size", options["batch_size"], 1)
    for key in ("mode", "checkpoint"):
        if key in options and not isinstance(options[key], str):
            raise ValueError(f"sweep.{key} must be a string; got {options[key]!r}")
    return options


def load(path: pathlib.Path) -> SweepPlan:
    """The sweep of TOML file ``path``, every part checked (module docstring)."""
    with open(path, "rb") as f:
        try:
            config = tomllib.load(f)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path} is not valid TOML: {error}") from None
    _check_keys(str(path), config, ["output", "model", "measure", "sweep"])
    model_section = dict(_check_keys("model", config.get("model", {}), None))
    kind = model_section.pop("kind", "pair")
    if kind not in _models.CONSTRUCTORS:
        raise ValueError(f"model.kind must be one of {', '.join(map(repr, _models.CONSTRUCTORS))}"
                         f"; got {kind!r}")
    _check_keys(f"model (kind = {kind!r})", model_section, _models.parameter_names(kind))
    params = _model_params(kind, model_section)
    model = _models.build(kind, params)
    fn = _measure(kind, config.get("measure", {}), model)
    sweep_section = _check_keys("sweep", config.get("sweep", {}), _SWEEP_OPTIONS + ["axes"])
    axes = _axes(kind, sweep_section.get("axes", {}), params)
    output = config.get("output", path.with_suffix(".nc").name)
    if not isinstance(output, str) or not output:
        raise ValueError(f"output must be a file name; got {output!r}")
    return SweepPlan(model, fn, axes, _sweep_options(sweep_section), output)
