r"""Parameter sweeps: one model, many parameter values, one labelled result.

:func:`sweep` evaluates ``fn(model)`` at every point of a set of parameter values and returns an
``xarray.Dataset`` (dimensions named after the swept parameters, coordinates = their values).

**Batching rule.** ``axes`` maps model parameters (array fields, e.g. ``"mu"``, ``"n_th"``) to
1-D arrays of values. ``mode="grid"`` takes the cartesian product (result shape
``(len(axes[a]), len(axes[b]), …)``, dimensions in the order of ``axes``); ``mode="zip"`` pairs
the i-th values of all axes (one dimension ``"point"``; every parameter is a coordinate along it).
A point's model is ``model`` with each swept field replaced by the point's value, broadcast to the
field's shape (a scalar for a per-site parameter sets every site), built with ``eqx.tree_at``.

**Execution.** Points are cut into chunks of ``batch_size``; a chunk is padded to a multiple of
the device count, split over the devices with ``jax.shard_map`` (each device vmaps ``fn`` over
its share and runs its own solver loop, with no communication), and only ``fn``'s outputs come
back, so memory is bounded by the chunk, not by the sweep. The compiled chunk is cached: another
sweep with the same ``fn``, model structure and chunk size does not recompile, whatever the
values and whichever parameters are swept.

**Failures are values.** ``fn`` must not raise on a failed solve: call :func:`qsync_jax.evolve` /
:func:`qsync_jax.time_average` with ``throw=False`` and return the result, whose status the sweep
records. A point whose status is not ``success``, or whose outputs are not finite, gets NaN
(floating) outputs and its reason in the ``status`` variable; its neighbours are unaffected.

**Devices.** By default every device of ``jax.devices()`` is used. On a CPU, JAX shows a single
device, which runs a sweep on one core; call :func:`qsync_jax.use_cpu_devices` right after
``import jax`` to make every core a device, each running its own share (it also sizes XLA's thread
pool so that batched linear algebra cannot deadlock on several CPU devices; ``sweep`` warns when
that pool is too small). Across several hosts, call
``jax.distributed.initialize()`` in every process and run the same ``sweep`` call in each:
``jax.devices()`` then spans all hosts, every process gets the whole Dataset, and only process 0
writes checkpoints (use a path on a shared file system).
"""

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import types
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree
from tqdm import tqdm

from ._devices import warn_if_pool_too_small
from ._results import AbstractResult
from ._status import Status, mark_nonfinite, status_names

_AXIS = "points"
_CHECKPOINT_VERSION = 1
_POINTS_PER_DEVICE = {"cpu": 256}
"""Default chunk (``batch_size=None``): points per device on CPUs (a chunk's solver state stays
in cache); accelerators get ``_POINTS_PER_ACCELERATOR`` (one solver loop over many lanes: each
step is a few kernel launches whatever the batch, so larger chunks finish sweeps sooner)."""
_POINTS_PER_ACCELERATOR = 131072
_RESERVED = ("status", "num_steps", "point", "t")


# --------------------------------------------------------------------------- checks


def _parameters(model: eqx.Module) -> list[str]:
    """Names of the array fields of ``model``: the parameters a sweep may vary."""
    return [
        f.name
        for f in dataclasses.fields(model)
        if not f.metadata.get("static", False) and eqx.is_array(getattr(model, f.name))
    ]


def _check_axes(model, axes, mode) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """Names and host value arrays of ``axes``; ``ValueError`` for anything a sweep cannot run."""
    if mode not in ("grid", "zip"):
        raise ValueError(f'mode must be "grid" or "zip"; got {mode!r}.')
    if not isinstance(axes, Mapping) or len(axes) == 0:
        raise ValueError(
            "axes must be a non-empty mapping from parameter names to 1-D arrays of values; "
            f"got {axes!r}."
        )
    parameters = _parameters(model)
    names, values = [], []
    for name, raw in axes.items():
        if name not in parameters:
            raise ValueError(
                f"axes: {name!r} is not a parameter of {type(model).__name__}; its array "
                f"parameters are {parameters}."
            )
        arr = np.asarray(raw)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"axes[{name!r}] must be a non-empty 1-D array of values; got shape {arr.shape}."
            )
        dtype = getattr(model, name).dtype
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"axes[{name!r}] must hold numbers; got dtype {arr.dtype}.")
        if not np.all(np.isfinite(arr)):
            bad = arr[~np.isfinite(arr)]
            raise ValueError(f"axes[{name!r}] (shape {arr.shape}) must be finite; got {bad}.")
        names.append(name)
        values.append(arr.astype(dtype))
    if mode == "zip" and len({v.size for v in values}) > 1:
        lengths = {n: v.size for n, v in zip(names, values)}
        raise ValueError(f'mode="zip" needs axes of equal lengths; got lengths {lengths}.')
    for name, arr in zip(names, values):
        _check_accepted(model, name, arr)
    return tuple(names), values


def _check_accepted(model, name: str, values: np.ndarray) -> None:
    """Rebuild ``model`` through its constructor at the extreme values of one axis.

    The models check their parameters in their constructors (signs, ranges, shapes); their
    constraints on one parameter are intervals, so the smallest and the largest value decide.
    The constructor must accept the model's fields as keyword arguments (as ``dataclasses``
    constructors and the models of this package do).
    """
    field = getattr(model, name)
    for value in {values.min(), values.max()}:
        try:
            dataclasses.replace(model, **{name: np.broadcast_to(value, field.shape)})
        except ValueError as error:
            raise ValueError(
                f"axes[{name!r}]: {type(model).__name__} rejects the value {value} (broadcast to "
                f"the field's shape {tuple(field.shape)}): {error}"
            ) from error


def _points(values: list[np.ndarray], mode: str) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Result shape and the flattened (P,) value array of every axis."""
    if mode == "zip":
        return (values[0].size,), values
    shape = tuple(v.size for v in values)
    return shape, [g.reshape(-1) for g in np.meshgrid(*values, indexing="ij")]


def _batched_model(model, names, flat, idx: np.ndarray) -> eqx.Module:
    """The models of points ``idx``, stacked: every array leaf gets a leading axis.

    Swept fields take the points' values (broadcast to the field's shape) through
    ``eqx.tree_at``; the other leaves are repeated. Stacking every leaf, not only the swept ones,
    makes the compiled chunk independent of which parameters are swept.
    """
    n = idx.size
    stacked = jax.tree_util.tree_map(
        lambda x: np.broadcast_to(np.asarray(x), (n, *jnp.shape(x))) if eqx.is_array(x) else x,
        model,
    )
    fields = [getattr(model, name) for name in names]
    swept = [
        np.broadcast_to(v[idx].reshape((n,) + (1,) * f.ndim), (n, *f.shape))
        for v, f in zip(flat, fields)
    ]
    return eqx.tree_at(lambda m: [getattr(m, name) for name in names], stacked, swept)


def _check_devices(devices) -> list:
    devices = jax.devices() if devices is None else list(devices)
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise ValueError(f"devices must be a non-empty sequence of jax devices; got {devices!r}.")
    warn_if_pool_too_small(devices)
    return devices


def _chunk_size(batch_size, n_points: int, devices) -> int:
    """Points per chunk: ``batch_size``, or by default equal chunks of at most the default."""
    if batch_size is None:
        per_device = _POINTS_PER_DEVICE.get(devices[0].platform, _POINTS_PER_ACCELERATOR)
        largest = len(devices) * per_device
        return -(-n_points // -(-n_points // largest))
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size}.")
    return int(min(batch_size, n_points))


# --------------------------------------------------------------------------- one point


def _split(result) -> tuple[PyTree, Status, jax.Array, jax.Array | None]:
    """Outputs, status, step count and save times of ``fn``'s result (the result protocol of
    :mod:`qsync_jax._results`; a plain pytree counts as a successful output)."""
    if isinstance(result, AbstractResult):
        return result.outputs(), result.status, result.num_steps, result.save_times()
    return result, Status.success, jnp.asarray(-1), None


def _nan_where_failed(status: Status, outputs: PyTree) -> PyTree:
    ok = status == Status.success

    def mask(x):
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            return x
        return jnp.where(ok, x, jnp.asarray(jnp.nan, x.dtype))

    return jax.tree_util.tree_map(mask, outputs)


def _point(fn, model):
    """``fn`` at one point: (outputs with NaN where failed, status, num_steps, ts)."""
    result = fn(model)
    outputs, status, num_steps, ts = _split(result)
    outputs = jax.tree_util.tree_map(jnp.asarray, outputs)
    status = mark_nonfinite(status, outputs)
    return _nan_where_failed(status, outputs), status, jnp.asarray(num_steps), ts


def _vmapped(fn, models):
    dynamic, static = eqx.partition(models, eqx.is_array)
    return jax.vmap(lambda d: _point(fn, eqx.combine(d, static)))(dynamic)


@eqx.filter_jit
def _run_chunk(fn, mesh, models):
    """``fn`` at every point of the stacked ``models``, split over the devices of ``mesh``.

    Arrays inside ``fn`` (a ``jax.tree_util.Partial``) are inputs, replicated on every device.
    """
    fn_dynamic, fn_static = eqx.partition(fn, eqx.is_array)
    dynamic, static = eqx.partition(models, eqx.is_array)

    def local(fn_dynamic, dynamic):
        return _vmapped(eqx.combine(fn_dynamic, fn_static), eqx.combine(dynamic, static))

    spec = PartitionSpec(_AXIS)
    return jax.shard_map(
        local, mesh=mesh, in_specs=(PartitionSpec(), spec), out_specs=spec, check_vma=False
    )(fn_dynamic, dynamic)


# --------------------------------------------------------------------------- outputs


def _leaf_names(tree) -> list[str]:
    """A variable name per leaf: dict keys and attribute names joined by "_"."""
    paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    names = []
    for path, _ in paths:
        parts = []
        for key in path:
            if isinstance(key, jax.tree_util.DictKey):
                parts.append(str(key.key))
            elif isinstance(key, jax.tree_util.GetAttrKey):
                parts.append(key.name)
            else:
                parts.append(str(getattr(key, "idx", key)))
        name = "_".join(parts)
        names.append(name if name[:1].isalpha() else f"output{'_' if name else ''}{name}")
    return names


class _Layout(eqx.Module):
    """What one point returns: variable names, per-point shapes and dtypes, time axis."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    has_time: bool

    def describe(self) -> list:
        return [list(self.names), [list(s) for s in self.shapes], list(self.dtypes), self.has_time]


def _layout(fn, first: eqx.Module, names) -> _Layout:
    """Trace ``fn`` on the stacked model of one point (no computation) to learn its outputs."""
    outputs, _, _, ts = eqx.filter_eval_shape(_vmapped, fn, first)
    leaf_names = _leaf_names(outputs)
    leaves = jax.tree_util.tree_leaves(outputs)
    clash = (set(leaf_names) & (set(_RESERVED) | set(names))) or (
        len(set(leaf_names)) != len(leaf_names)
    )
    if clash:
        raise ValueError(
            f"fn's outputs must have distinct names other than {_RESERVED} and the swept "
            f"parameters {names}; got {leaf_names} (return a dict to name them)."
        )
    return _Layout(
        names=tuple(leaf_names),
        shapes=tuple(tuple(x.shape[1:]) for x in leaves),
        dtypes=tuple(str(x.dtype) for x in leaves),
        has_time=ts is not None,
    )


def _to_host(x) -> np.ndarray:
    if x.is_fully_addressable:
        return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _dataset(layout, results, ts, names, values, grid_shape, mode) -> xr.Dataset:
    if mode == "grid":
        dims = list(names)
        coords = dict(zip(names, values))
    else:
        dims = ["point"]
        coords = {name: ("point", v) for name, v in zip(names, values)}
    data = {}
    for name, shape in zip(layout.names, layout.shapes):
        time = ["t"] if layout.has_time else []
        extra = time + [f"{name}_{k}" for k in range(len(shape) - len(time))]
        data[name] = (dims + extra, results[name].reshape(grid_shape + shape))
    data["status"] = (dims, results["status"].reshape(grid_shape))
    data["num_steps"] = (dims, results["num_steps"].reshape(grid_shape))
    if layout.has_time:
        coords["t"] = ts
    return xr.Dataset(data, coords=coords, attrs={"sweep_mode": mode})


# --------------------------------------------------------------------------- checkpoints


def _fingerprint(obj, h, seen: set) -> None:
    """Feed a stable description of ``obj`` (values, code, closures) into the hash ``h``."""
    if id(obj) in seen:
        h.update(b"<cycle>")
        return
    if isinstance(obj, (str, bytes, int, float, complex, bool, type(None))):
        h.update(repr((type(obj).__name__, obj)).encode())
    elif eqx.is_array(obj) or isinstance(obj, np.generic):
        arr = np.asarray(obj)
        h.update(repr((arr.dtype.str, arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    elif isinstance(obj, (types.FunctionType, types.MethodType, partial, types.CodeType)):
        seen = seen | {id(obj)}
        if isinstance(obj, types.MethodType):
            parts = (obj.__func__, obj.__self__)
        elif isinstance(obj, partial):
            parts = (obj.func, obj.args, obj.keywords)
        elif isinstance(obj, types.CodeType):
            parts = (obj.co_name, obj.co_code, obj.co_consts, obj.co_names)
        else:
            cells = tuple(c.cell_contents for c in (obj.__closure__ or ()))
            parts = (obj.__module__, obj.__qualname__, obj.__code__, obj.__defaults__, cells)
        for part in parts:
            _fingerprint(part, h, seen)
    elif isinstance(obj, (tuple, list, dict)) or dataclasses.is_dataclass(obj):
        seen = seen | {id(obj)}
        leaves, treedef = jax.tree_util.tree_flatten(obj)
        _fingerprint_structure(treedef, h, seen)
        for leaf in leaves:
            _fingerprint(leaf, h, seen)
    else:
        h.update(f"{type(obj).__module__}.{type(obj).__qualname__}".encode())


def _fingerprint_structure(treedef, h, seen: set) -> None:
    """Node types and their static data (e.g. static fields of a module), node by node."""
    data = treedef.node_data()
    if data is None:
        h.update(b"*")
        return
    kind, aux = data
    h.update(f"{kind.__module__}.{kind.__qualname__}".encode())
    _fingerprint(aux, h, seen)
    for child in treedef.children():
        _fingerprint_structure(child, h, seen)


def _digest(*objs) -> str:
    h = hashlib.sha256()
    for obj in objs:
        _fingerprint(obj, h, set())
    return h.hexdigest()


def _atomic_write(path: Path, write: Callable) -> None:
    """Write through ``write(file)`` to a temporary file, then rename it onto ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class _Checkpoint:
    """A directory with ``manifest.json`` and one ``chunk_<k>.npz`` per finished chunk."""

    def __init__(self, path, manifest: dict, writer: bool):
        self.path = Path(path)
        self.writer = writer
        target = self.path / "manifest.json"
        if target.exists():
            found = json.loads(target.read_text())
            differs = sorted(k for k in manifest if found.get(k) != manifest[k])
            if differs:
                hint = (
                    f" (it was written with batch_size={found.get('batch_size')}: pass that to "
                    "resume it)" if differs == ["batch_size"] else ""
                )
                raise ValueError(
                    f"checkpoint {str(self.path)!r} was made for a different sweep "
                    f"(different {', '.join(differs)}){hint}; use another path, or delete it to "
                    "start over."
                )
        elif self.path.exists() and any(self.path.iterdir()):
            raise ValueError(
                f"checkpoint {str(self.path)!r} is a non-empty directory without a sweep "
                "manifest; use an empty or new directory."
            )
        elif writer:
            self.path.mkdir(parents=True, exist_ok=True)
            text = json.dumps(manifest, indent=1).encode()
            _atomic_write(target, lambda f: f.write(text))

    def _file(self, k: int) -> Path:
        return self.path / f"chunk_{k:06d}.npz"

    def load(self, k: int) -> dict | None:
        if not self._file(k).exists():
            return None
        with np.load(self._file(k)) as data:
            return {name: data[name] for name in data.files}

    def save(self, k: int, arrays: dict) -> None:
        if self.writer:
            _atomic_write(self._file(k), lambda f: np.savez(f, **arrays))


# --------------------------------------------------------------------------- sweep


def sweep(
    fn: Callable[[eqx.Module], PyTree],
    model: eqx.Module,
    axes: Mapping[str, Sequence[float]],
    *,
    mode: str = "grid",
    batch_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
) -> xr.Dataset:
    r"""Evaluate ``fn`` over a grid (or a list) of parameter values; a labelled ``Dataset``.

    **Main arguments:**

    - ``fn``: ``fn(model) -> result`` for one point. ``result`` is a pytree of arrays, or the
      result of a solve made with ``throw=False``, whose status (and step count) is recorded:
      of a :class:`qsync_jax.TimeAverage` the outputs are its ``value``, of a
      :class:`qsync_jax.Trajectory` its ``states``, of any other result with a ``status`` (e.g.
      :class:`qsync_jax.SteadyStateSolution`) its other fields. Pass a module-level function,
      or a ``jax.tree_util.Partial`` of one: its array arguments may change between calls
      without recompiling. A new lambda per call recompiles. Example::

          def measures(t, state):
              return {"S_c": qs.complete_sync(state, 1, 3), "S_p": qs.phase_sync(state, 1, 3)}

          batched = qs.SolverConfig(solver=qs.Unrolled())  # faster for many trajectories

          def fn(model):
              return qs.time_average(model, measures, (1000.0, 2000.0), config=batched,
                                     throw=False)

    - ``model``: the model at the base point; parameters not swept keep its values.
    - ``axes``: ``{"name": 1-D values, ...}``, names of array fields of ``model`` (e.g.
      ``{"mu": np.linspace(0, 0.05, 26), "n_th": [0.0, 1.0, 10.0]}``). A value is broadcast to
      the field's shape.

    **Other arguments:**

    - ``mode``: ``"grid"`` (cartesian product, one dimension per axis) or ``"zip"`` (the i-th
      values of all axes form point i; equal lengths; one dimension ``"point"``).
    - ``batch_size``: points per chunk (memory is bounded by one chunk; the compiled chunk is
      reused by sweeps with the same chunk size). Default: equal chunks of at most 256 points
      per device on CPUs, 131072 per device on accelerators.
    - ``devices``: devices to split every chunk over; default ``jax.devices()``.
    - ``progress``: show a progress bar over chunks (points done, points/s, time left).
    - ``checkpoint``: a directory. Finished chunks are written there as they complete; calling
      ``sweep`` again with the same arguments after an interruption loads them and computes only
      the rest, giving the same Dataset as an uninterrupted run. A directory made by a different
      sweep (axes, mode, batch size, model, or ``fn``'s code, defaults and closure) is refused.

    **Returns** an ``xarray.Dataset`` with dimensions named after the axes (grid) or
    ``"point"`` (zip), coordinates = the swept values, one variable per output leaf (named by its
    dict keys or attribute names, e.g. ``S_c``; extra per-point axes are dimensions
    ``<name>_0, …``, or ``t`` for a ``Trajectory``'s save times), ``status`` (names of
    :class:`qsync_jax.Status` members, ``"success"`` where the point worked) and ``num_steps``
    (solver steps, −1 when ``fn`` returns plain arrays). Write it with ``ds.to_netcdf(path)``.

    Raises ``ValueError`` before any computation for unknown parameters, values that are not
    non-empty finite 1-D arrays, unequal lengths in zip mode, values the model's constructor
    rejects (checked at each axis's smallest and largest value), or a foreign checkpoint.
    """
    names, values = _check_axes(model, axes, mode)
    devices = _check_devices(devices)
    grid_shape, flat = _points(values, mode)
    n_points = math.prod(grid_shape)
    chunk = _chunk_size(batch_size, n_points, devices)
    padded = -(-chunk // len(devices)) * len(devices)
    n_chunks = -(-n_points // chunk)
    layout = _layout(fn, _batched_model(model, names, flat, np.zeros(1, int)), names)

    store = None
    if checkpoint is not None:
        manifest = {
            "version": _CHECKPOINT_VERSION,
            "axes": _digest(names, values, mode),
            "batch_size": chunk,
            "model": _digest(model),
            "fn": _digest(fn),
            "outputs": layout.describe(),
        }
        store = _Checkpoint(checkpoint, manifest, writer=jax.process_index() == 0)

    mesh = Mesh(np.asarray(devices), (_AXIS,))
    sharding = NamedSharding(mesh, PartitionSpec(_AXIS))
    results = {
        name: np.empty((n_points, *shape), dtype)
        for name, shape, dtype in zip(layout.names, layout.shapes, layout.dtypes)
    }
    results["status"] = np.empty(n_points, dtype=object)
    results["num_steps"] = np.empty(n_points, dtype=np.int64)
    ts = None

    def store_chunk(k, arrays):
        lo = k * chunk
        for name, arr in arrays.items():
            results[name][lo : lo + arr.shape[0]] = arr

    def launch(k):
        lo, hi = k * chunk, min((k + 1) * chunk, n_points)
        idx = np.minimum(np.arange(lo, lo + padded), hi - 1)  # pad with the last point
        models = jax.tree_util.tree_map(
            lambda x: jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])
            if eqx.is_array(x) else x,
            _batched_model(model, names, flat, idx),
        )
        return _run_chunk(fn, mesh, models)

    def collect(k, out):
        nonlocal ts
        outputs, status, num_steps, out_ts = out
        n = min((k + 1) * chunk, n_points) - k * chunk
        arrays = {
            name: _to_host(x)[:n]
            for name, x in zip(layout.names, jax.tree_util.tree_leaves(outputs))
        }
        arrays["status"] = status_names(jax.tree_util.tree_map(_to_host, status))[:n]
        arrays["num_steps"] = _to_host(num_steps)[:n]
        if out_ts is not None:
            ts = _to_host(out_ts)[0]
            arrays["t"] = ts
        return arrays

    todo = []
    for k in range(n_chunks):
        loaded = store.load(k) if store is not None else None
        if loaded is None:
            todo.append(k)
        else:
            ts = loaded.pop("t", ts)
            store_chunk(k, loaded)
    done = n_points - sum(min(chunk, n_points - k * chunk) for k in todo)

    with tqdm(
        total=n_points, initial=done, unit="pt", desc="sweep", disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        pending = None
        for k in todo + [None]:
            launched = (k, launch(k)) if k is not None else None  # runs while we collect
            if pending is not None:
                arrays = collect(*pending)
                if store is not None:
                    store.save(pending[0], arrays)
                arrays.pop("t", None)
                store_chunk(pending[0], arrays)
                bar.update(arrays["num_steps"].shape[0])
            pending = launched

    results["status"] = results["status"].astype(str)
    return _dataset(layout, results, ts, names, values, grid_shape, mode)
