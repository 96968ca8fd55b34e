"""One publication style for every qsync_jax figure."""

import contextlib
import pathlib

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "figure.figsize": (4.8, 3.4),
    "figure.dpi": 150,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.labelsize": 9,
    "axes.titlesize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "axes.prop_cycle": mpl.cycler(
        color=["#1f4e9c", "#2a9d4b", "#c0392b", "#8e44ad", "#e67e22", "#16a085", "#555555"]
    ),
    "lines.linewidth": 1.3,
    "lines.markersize": 4,
    "image.cmap": "viridis",
}


@contextlib.contextmanager
def style():
    """Context manager applying the qsync_jax figure style."""
    with mpl.rc_context(STYLE):
        yield


def succeeded(ds):
    """Boolean mask of the points of a sweep ``Dataset`` whose ``status`` is success.

    Accepts status names (``"success"``, as :func:`qsync_jax.sweep` writes them) or integer
    codes (0 = success); a Dataset without ``status`` counts as all successful.
    """
    if "status" not in ds:
        return None
    status = np.asarray(ds["status"])
    return status == ("success" if status.dtype.kind in "USO" else 0)


def as_array(name: str, x, shape: tuple, *, finite=True) -> np.ndarray:
    """``x`` as a real NumPy array of ``shape`` (``None`` entries: any length), else a
    ``ValueError``/``TypeError`` naming ``name``; NaN is allowed only where ``finite`` is False
    (failed sweep points are drawn as gaps)."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be an array of real numbers; got {x!r}.") from None
    if arr.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, arr.shape)):
        expected = "(" + ", ".join("·" if n is None else str(n) for n in shape) + ")"
        raise ValueError(f"`{name}` must have shape {expected}; got shape {arr.shape}.")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` (shape {arr.shape}) has non-finite entries.")
    return arr


def new_axes(ax=None, **subplot_kw):
    """Return ``ax`` or, when None, the axes of a new styled figure."""
    if ax is not None:
        return ax
    # Resolve the backend outside the style context: inside it, Jupyter's automatic switch to
    # the inline backend would be undone on exit and later figures would not be displayed.
    plt.switch_backend(mpl.get_backend())
    with style():
        _, ax = plt.subplots(subplot_kw=subplot_kw or None)
    return ax


def save_figure(ax_or_fig, path) -> pathlib.Path:
    """Save the figure of ``ax_or_fig`` to ``path`` (parents created), close it, return the path."""
    fig = getattr(ax_or_fig, "figure", ax_or_fig)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with style():
        fig.savefig(path)
    plt.close(fig)
    return path
