"""Heat maps of two-parameter sweeps."""

import numpy as np

from ._style import new_axes, style, succeeded


def sweep_heatmap(ds, variable: str, *, x: str | None = None, y: str | None = None,
                  log=False, ax=None, cbar_label=None):
    """Colour map of ``ds[variable]`` over two swept coordinates; failed points are grey.

    ``x``/``y`` default to the variable's last/first dimension. With ``log=True`` the colours
    show log10 of the values; values ≤ 0 (e.g. an exactly vanishing measure) are drawn in the
    lowest colour and the colour bar is extended, so that only failed points are grey.
    """
    if not hasattr(ds, "data_vars") or variable not in ds:
        raise ValueError(f"`variable` {variable!r} is not a variable of `ds` (a sweep Dataset).")
    ax = new_axes(ax)
    da = ds[variable]
    y = y or da.dims[0]
    x = x or da.dims[1]
    da = da.transpose(y, x)
    values = np.asarray(da, dtype=float)
    if "status" in ds:
        values = np.where(succeeded(ds[["status"]].transpose(y, x)), values, np.nan)
    extend = "neither"
    if log:
        nonpositive = values <= 0  # NaN (failed) compares False and stays NaN
        positive = values[values > 0]
        if nonpositive.any():
            extend = "min"
            values = np.where(nonpositive, positive.min() if positive.size else 1.0, values)
        values = np.log10(values)
    with style():
        mesh = ax.pcolormesh(np.asarray(ds[x]), np.asarray(ds[y]), np.ma.masked_invalid(values),
                             shading="nearest")
        ax.set_facecolor("0.85")
        cbar = ax.figure.colorbar(mesh, ax=ax, extend=extend)
        cbar.set_label(cbar_label or (f"log10 {variable}" if log else variable))
        ax.set_xlabel(x)
        ax.set_ylabel(y)
    return ax
