r"""Sweep axes, the points they define, and the batched models of a chunk of points.

An axis is a key of ``axes`` and a 1-D array of values. The key names an array field of the
model (its physical parameters are array leaves):

- ``"name"`` sets every entry of the field to the point's value (a per-site parameter given as
  one number, as a constructor would broadcast it). Refused when the base model's value is not
  uniform (e.g. ``omega = (1.0, 1.005)``): the sweep would silently override the difference;
- ``"name[i]"``, ``"name[i, j]"`` (any integer indices, negative from the end) set one entry and
  keep the others at the base model's values: ``"omega[1]"`` sweeps the second site's
  frequency, i.e. the detuning ω₂ − ω₁ of a pair.

A point's model is the base model with these entries replaced (``eqx.tree_at``): whatever the
model derives from its fields follows, exactly as for the model built directly. Values are
checked by the model's own constructor (``dataclasses.replace``) at each axis's smallest and
largest value, where its constraints (signs, ranges, symmetry) live.
"""

import dataclasses
import re
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

_KEY = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:\[([^\[\]]*)\])?\s*")
_INTEGER = re.compile(r"\s*-?\d+\s*")


@dataclasses.dataclass(frozen=True)
class Axis:
    """One axis: its key in ``axes`` (the Dataset dimension), the field it sets, the entry
    (``None`` for every entry) and its (n,) values in the field's dtype."""

    key: str
    field: str
    index: tuple[int, ...] | None
    values: np.ndarray


def parameters(model: eqx.Module) -> list[str]:
    """Names of the array fields of ``model``: the parameters a sweep may vary."""
    return [
        f.name
        for f in dataclasses.fields(model)
        if not f.metadata.get("static", False) and eqx.is_array(getattr(model, f.name))
    ]


def parse_axes(model: eqx.Module, axes, mode: str) -> tuple[Axis, ...]:
    """The axes of a sweep; ``ValueError`` (naming the key) for anything a sweep cannot run."""
    if mode not in ("grid", "zip"):
        raise ValueError(f'mode must be "grid" or "zip"; got {mode!r}.')
    if not isinstance(axes, Mapping) or len(axes) == 0:
        raise ValueError(
            "axes must be a non-empty mapping from parameter names (e.g. 'mu', 'omega[1]') to "
            f"1-D arrays of values; got {axes!r}."
        )
    parsed = tuple(_axis(model, key, raw) for key, raw in axes.items())
    _check_overlap(parsed)
    if mode == "zip" and len({a.values.size for a in parsed}) > 1:
        lengths = {a.key: a.values.size for a in parsed}
        raise ValueError(f'mode="zip" needs axes of equal lengths; got lengths {lengths}.')
    for axis in parsed:
        _check_uniform_base(model, axis)
        _check_accepted(model, axis)
    return parsed


def _axis(model, key, raw) -> Axis:
    if not isinstance(key, str):
        raise ValueError(
            f"axes keys must be strings such as 'mu' or 'omega[1]'; got {key!r} ({type(key)})."
        )
    match = _KEY.fullmatch(key)
    names = parameters(model)
    if match is None:
        raise ValueError(
            f"axes: {key!r} is neither a parameter name nor one entry such as 'omega[1]'; the "
            f"array parameters of {type(model).__name__} are {names}."
        )
    field, index_text = match.groups()
    if field not in names:
        raise ValueError(
            f"axes: {field!r} is not a parameter of {type(model).__name__}; its array "
            f"parameters are {names}."
        )
    shape = tuple(getattr(model, field).shape)
    index = None if index_text is None else _index(key, field, index_text, shape)
    arr = np.asarray(raw)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"axes[{key!r}] must be a non-empty 1-D array of values; got shape {arr.shape}."
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"axes[{key!r}] must hold numbers; got dtype {arr.dtype}.")
    if np.iscomplexobj(arr) and not np.iscomplexobj(np.asarray(getattr(model, field))):
        raise ValueError(f"axes[{key!r}] must be real; got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)]
        raise ValueError(f"axes[{key!r}] (shape {arr.shape}) must be finite; got {bad}.")
    return Axis(key, field, index, arr.astype(getattr(model, field).dtype))


def _index(key: str, field: str, text: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The entry ``text`` (``"1"``, ``"0, -1"``) of a field of ``shape``, made non-negative."""
    parts = text.split(",")
    if not all(_INTEGER.fullmatch(p) for p in parts):
        raise ValueError(
            f"axes: {key!r} must index {field!r} with integers, e.g. '{field}[1]'; got [{text}]."
        )
    index = tuple(int(p) for p in parts)
    if len(index) != len(shape) or not all(-n <= i < n for i, n in zip(index, shape)):
        raise ValueError(
            f"axes: {key!r} is not an entry of {field!r}, which has shape {shape}"
            + (" (a scalar: sweep it as a whole)." if shape == () else ".")
        )
    return tuple(i % n for i, n in zip(index, shape))


def _check_overlap(axes: tuple[Axis, ...]) -> None:
    """No two axes may set the same entry (a whole field overlaps all its entries)."""
    seen: dict = {}
    for axis in axes:
        for key, index in seen.get(axis.field, ()):
            if index is None or axis.index is None or index == axis.index:
                raise ValueError(
                    f"axes {key!r} and {axis.key!r} both set {axis.field!r}"
                    + ("" if index is None or axis.index is None else f"{list(index)}")
                    + "; give each entry one axis (or use mode='zip' to move them together)."
                )
        seen.setdefault(axis.field, []).append((axis.key, axis.index))


def _check_uniform_base(model, axis: Axis) -> None:
    base = np.asarray(getattr(model, axis.field))
    if axis.index is None and base.size > 1 and not np.all(base == base.flat[0]):
        example = f"{axis.field}[{', '.join(['0'] * base.ndim)}]"
        raise ValueError(
            f"axes[{axis.key!r}] would set every entry of {axis.field!r} to one value, but the "
            f"base model's {axis.field} = {base.tolist()} is not uniform and its differences "
            f"would be lost; sweep single entries (e.g. {example!r}) or build the base model "
            f"with a uniform {axis.field}."
        )


def _replaced(base: np.ndarray, index, value) -> np.ndarray:
    """``base`` with the entries an axis sets (``index``; ``None``: all) equal to ``value``."""
    new = np.array(base)
    new[() if index is None else index] = value
    return new


def _check_accepted(model, axis: Axis) -> None:
    """Rebuild ``model`` through its constructor at the extreme values of ``axis``.

    The models check their parameters in their constructors (signs, ranges, shapes); their
    constraints on one parameter are intervals, so the smallest and the largest value decide.
    The constructor must accept the model's fields as keyword arguments (as ``dataclasses``
    constructors and the models of this package do).
    """
    base = np.asarray(getattr(model, axis.field))
    for value in sorted({axis.values.min(), axis.values.max()}):
        new = _replaced(base, axis.index, value)
        try:
            dataclasses.replace(model, **{axis.field: new})
        except ValueError as error:
            raise ValueError(
                f"axes[{axis.key!r}]: {type(model).__name__} rejects the value {value} "
                f"({axis.field} = {new.tolist()}): {error}"
            ) from error


def points(axes: tuple[Axis, ...], mode: str) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Result shape and the flattened (P,) value array of every axis (row-major grid)."""
    values = [a.values for a in axes]
    if mode == "zip":
        return (values[0].size,), values
    shape = tuple(v.size for v in values)
    return shape, [g.reshape(-1) for g in np.meshgrid(*values, indexing="ij")]


def batched_model(model, axes: tuple[Axis, ...], flat, idx: np.ndarray) -> eqx.Module:
    """The models of points ``idx``, stacked: every array leaf gets a leading axis.

    Swept fields take the points' values; the other leaves are repeated. Stacking every leaf,
    not only the swept ones, makes the compiled chunk independent of which parameters (and which
    entries) are swept.
    """
    n = idx.size
    stacked = jax.tree_util.tree_map(
        lambda x: np.broadcast_to(np.asarray(x), (n, *jnp.shape(x))) if eqx.is_array(x) else x,
        model,
    )
    fields: dict[str, np.ndarray] = {}
    for axis, values in zip(axes, flat):
        if axis.field not in fields:
            fields[axis.field] = np.array(getattr(stacked, axis.field))
        target = fields[axis.field]
        column = values[idx]
        if axis.index is None:
            target[...] = column.reshape((n,) + (1,) * (target.ndim - 1))
        else:
            target[(slice(None), *axis.index)] = column
    return eqx.tree_at(lambda m: [getattr(m, f) for f in fields], stacked, list(fields.values()))
