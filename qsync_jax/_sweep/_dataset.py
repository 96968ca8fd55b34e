r"""What a sweep returns: variable names, dimensions, the collected values, the Dataset.

Every leaf of ``fn``'s outputs becomes a variable named by its dict keys and attribute names
joined by ``_`` (e.g. ``S_c``, ``state_cov``). Its dimensions are the sweep's (one per axis, or
``point``), then ``t`` for a time series, then one per extra axis of the leaf:

- the mean and covariance of a :class:`qsync_jax.GaussianState` get ``quadrature`` and
  ``quadrature_i``, ``quadrature_j``, labelled ``x0, p0, x1, p1, …`` (mode k: ``xk, pk``; the
  xpxp ordering of :mod:`qsync_jax._gaussian`);
- ``dims={"S_c": ("pair",)}`` names them for any output;
- otherwise they are ``<name>_0, <name>_1, …``.

Values are collected point by point into arrays that start as NaN (and points marked as never
computed), so a point can never show data it did not produce.
"""

import dataclasses
import importlib.metadata
import json
from collections.abc import Mapping

import jax
import numpy as np
import xarray as xr

from .._gaussian import GaussianState

RESERVED = ("status", "num_steps", "point", "t")


def _leaf_names(tree) -> list[str]:
    """A variable name per leaf: dict keys and attribute names joined by "_"."""
    paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [_path_name(path) for path, _ in paths]


def _path_name(path) -> str:
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        elif isinstance(key, jax.tree_util.GetAttrKey):
            parts.append(key.name)
        else:
            parts.append(str(getattr(key, "idx", key)))
    name = "_".join(parts)
    return name if name[:1].isalpha() else f"output{'_' if name else ''}{name}"


def _gaussian_dims(tree) -> dict[str, tuple[str, ...]]:
    """Dimensions of the mean and covariance leaves of every ``GaussianState`` in ``tree``."""
    nodes, _ = jax.tree_util.tree_flatten_with_path(
        tree, is_leaf=lambda x: isinstance(x, GaussianState)
    )
    dims = {}
    for path, node in nodes:
        if isinstance(node, GaussianState):
            key = jax.tree_util.GetAttrKey
            dims[_path_name((*path, key("mean")))] = ("quadrature",)
            dims[_path_name((*path, key("cov")))] = ("quadrature_i", "quadrature_j")
    return dims


@dataclasses.dataclass(frozen=True)
class Layout:
    """What one point returns: variable names, per-point shapes, dtypes and dimension names."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    dims: tuple[tuple[str, ...], ...]  # per-point dimensions of each variable ("t" first)
    n_times: int | None  # length of the time axis of a time series, else None

    def describe(self) -> list:
        """A JSON-able description (for checkpoints)."""
        return [list(self.names), [list(s) for s in self.shapes], list(self.dtypes),
                [list(d) for d in self.dims], self.n_times]


def layout(out_shapes, keys: tuple[str, ...], dims) -> Layout:
    """The layout of the (traced, one-point) outputs ``out_shapes`` of a sweep over ``keys``.

    ``ValueError`` for clashing names and for ``dims`` that do not fit the outputs.
    """
    outputs, _, _, ts = out_shapes
    names = _leaf_names(outputs)
    leaves = jax.tree_util.tree_leaves(outputs)
    if (set(names) & (set(RESERVED) | set(keys))) or len(set(names)) != len(names):
        raise ValueError(
            f"fn's outputs must have distinct names other than {RESERVED} and the swept "
            f"parameters {list(keys)}; got {names} (return a dict to name them)."
        )
    shapes = tuple(tuple(x.shape[1:]) for x in leaves)
    n_times = None if ts is None else int(ts.shape[-1])
    time = ("t",) if n_times is not None else ()
    named = {**_gaussian_dims(outputs), **_check_dims(dims, names)}
    all_dims = []
    for name, shape in zip(names, shapes):
        extra = named.get(name, tuple(f"{name}_{k}" for k in range(len(shape) - len(time))))
        if len(time) + len(extra) != len(shape):
            raise ValueError(
                f"dims[{name!r}] = {extra} names {len(extra)} axes, but the output {name!r} has "
                f"{len(shape) - len(time)} per point (shape {shape[len(time):]})."
            )
        all_dims.append(time + tuple(extra))
    _check_sizes(names, shapes, all_dims, keys)
    return Layout(tuple(names), shapes, tuple(str(x.dtype) for x in leaves), tuple(all_dims),
                  n_times)


def _check_dims(dims, names) -> dict[str, tuple[str, ...]]:
    if dims is None:
        return {}
    if not isinstance(dims, Mapping):
        raise ValueError(f"dims must be a mapping from output names to dimension names; "
                         f"got {dims!r}.")
    checked = {}
    for name, value in dims.items():
        if name not in names:
            raise ValueError(f"dims: {name!r} is not an output of fn; its outputs are {names}.")
        value = (value,) if isinstance(value, str) else value
        if not isinstance(value, (tuple, list)) or not all(
            isinstance(d, str) and d for d in value
        ):
            raise ValueError(f"dims[{name!r}] must be a dimension name or a sequence of names; "
                             f"got {dims[name]!r}.")
        checked[name] = tuple(value)
    return checked


def _check_sizes(names, shapes, all_dims, keys) -> None:
    """Each dimension has one size; no per-point dimension reuses a sweep dimension's name."""
    sizes: dict[str, tuple[int, str]] = {}
    for name, shape, dims in zip(names, shapes, all_dims):
        if len(set(dims)) != len(dims):
            raise ValueError(f"the dimensions {dims} of output {name!r} must be distinct.")
        for dim, size in zip(dims, shape):
            if dim in keys or dim in ("point", "status", "num_steps") or dim in names:
                raise ValueError(f"output {name!r}: its dimension {dim!r} clashes with a sweep "
                                 "dimension or variable; name it otherwise with dims=.")
            other = sizes.setdefault(dim, (size, name))
            if other[0] != size:
                raise ValueError(
                    f"dimension {dim!r} has size {other[0]} in output {other[1]!r} but {size} "
                    f"in {name!r}; give them different names with dims=."
                )


def _missing(shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    fill = np.nan if np.issubdtype(dtype, np.inexact) else 0
    return np.full(shape, fill, dtype)


class Results:
    """The sweep's values, filled chunk by chunk (floating values start as NaN)."""

    def __init__(self, layout: Layout, n_points: int):
        self.layout = layout
        self.arrays = {
            name: _missing((n_points, *shape), dtype)
            for name, shape, dtype in zip(layout.names, layout.shapes, layout.dtypes)
        }
        self.arrays["status"] = np.full(n_points, "", dtype=object)
        self.arrays["num_steps"] = np.full(n_points, -1, dtype=np.int64)
        self.filled = np.zeros(n_points, dtype=bool)
        self.ts = None

    def put(self, lo: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Store the values of points ``lo, lo + 1, …`` (and their save times ``t``)."""
        if "t" in arrays:
            self.set_times(arrays["t"])
        n = arrays["status"].shape[0]
        for name, target in self.arrays.items():
            target[lo : lo + n] = arrays[name]
        self.filled[lo : lo + n] = True

    def set_times(self, ts: np.ndarray) -> None:
        """Record the save times ``ts`` (of one or more points: ``(T,)`` or ``(n, T)``);
        ``ValueError`` where they differ from those recorded before."""
        first = ts.reshape(-1, ts.shape[-1])[0] if self.ts is None else self.ts
        if not np.all(ts == first):
            raise ValueError("fn's save times differ between points; a sweep records one "
                             "time axis: return varying times as an output instead.")
        self.ts = first

    def dataset(self, axes, grid_shape, mode: str, model) -> xr.Dataset:
        if not self.filled.all():
            missing = np.flatnonzero(~self.filled)
            raise RuntimeError(f"sweep: points {missing[:10].tolist()} were never computed.")
        if mode == "grid":
            dims = [a.key for a in axes]
            coords = {a.key: a.values for a in axes}
        else:
            dims = ["point"]
            coords = {a.key: ("point", a.values) for a in axes}
        data = {}
        for name, shape, extra in zip(self.layout.names, self.layout.shapes, self.layout.dims):
            data[name] = (dims + list(extra), self.arrays[name].reshape(grid_shape + shape))
            for dim, size in zip(extra, shape):
                if dim.startswith("quadrature") and dim not in coords:
                    coords[dim] = [f"{q}{k}" for k in range(size // 2) for q in "xp"]
        data["status"] = (dims, self.arrays["status"].astype(str).reshape(grid_shape))
        data["num_steps"] = (dims, self.arrays["num_steps"].reshape(grid_shape))
        if self.ts is not None:
            coords["t"] = self.ts
        ds = xr.Dataset(data, coords=coords, attrs=_attributes(model, mode))
        for axis in axes:
            units = _units(model, axis.field)
            if units:
                ds[axis.key].attrs["units"] = units
        return ds


def _units(model, field: str) -> str | None:
    """The units a model declares for ``field`` (field metadata ``units``, or ``units`` of a
    declared ``parameter``), if any."""
    metadata = {f.name: f.metadata for f in dataclasses.fields(model)}[field]
    declared = metadata.get("parameter")
    units = metadata.get("units") or (declared.get("units") if isinstance(declared, Mapping)
                                      else None)
    return units if isinstance(units, str) and units else None


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _attributes(model, mode: str) -> dict:
    """``sweep_mode``, the base model (type, parameters, units), the library versions.

    Parameters are netCDF-writable: numbers and 1-D arrays as they are, larger arrays as JSON
    nested lists, static settings (e.g. a ring's ``n_sites``) as they are.
    """
    attrs = {"sweep_mode": mode, "model": type(model).__name__}
    for field in dataclasses.fields(model):
        value = getattr(model, field.name, None)
        key = f"model.{field.name}"
        if field.metadata.get("static", False) or not hasattr(value, "shape"):
            if isinstance(value, (bool, int, float, str)):
                attrs[key] = str(value) if isinstance(value, bool) else value
            continue
        arr = np.asarray(value)
        attrs[key] = json.dumps(arr.tolist()) if arr.ndim > 1 else arr[()] if arr.ndim == 0 else arr
        units = _units(model, field.name)
        if units:
            attrs[f"{key}.units"] = units
    attrs["qsync_jax_version"] = _version("qsync_jax")
    attrs["jax_version"] = jax.__version__
    return attrs
