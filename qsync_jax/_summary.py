"""Readable summaries of models and states: ``Name(field=value, ...)``, also as HTML."""

import dataclasses
import html

import equinox as eqx
import jax
import numpy as np


def _is_concrete(x) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def format_value(x) -> str:
    """Small arrays in full, uniform ones as one value, large ones as their shape and range."""
    if x is None or not eqx.is_array(x):
        return repr(x)
    if not _is_concrete(x):
        return f"<traced {x.dtype}{list(x.shape)}>"
    x = np.asarray(x)
    if x.size == 0:
        return f"<{x.dtype}{list(x.shape)}>"
    if x.size > 8:
        if np.all(x == x.reshape(-1)[0]):
            return f"<{x.dtype}{list(x.shape)}, all {x.reshape(-1)[0]:.6g}>"
        return f"<{x.dtype}{list(x.shape)} in [{x.min():.6g}, {x.max():.6g}]>"
    if x.ndim == 0:
        return f"{x:.6g}" if np.issubdtype(x.dtype, np.floating) else str(x)
    text = np.array2string(x, separator=", ", formatter={"float_kind": "{:.6g}".format})
    return " ".join(text.split())


def summary(obj) -> str:
    """``Name(field=value, ...)`` over the public dataclass fields of ``obj``."""
    items = (
        f"{f.name}={format_value(getattr(obj, f.name))}"
        for f in dataclasses.fields(obj)
        if not f.name.startswith("_")
    )
    return f"{type(obj).__name__}({', '.join(items)})"


class Summary(eqx.Module):
    """Mixin: ``repr`` lists the field values (:func:`summary`); ``_repr_html_`` for Jupyter."""

    def __repr__(self) -> str:
        return summary(self)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>"
