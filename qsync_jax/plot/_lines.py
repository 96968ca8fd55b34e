"""Line plots: measures against time and sweep results against one parameter."""

import numpy as np

from ._style import as_array, new_axes, style, succeeded


def measures_vs_time(ts, measures: dict, *, averages: dict | None = None, time_unit=1.0,
                     time_label="t", ax=None):
    """Plot each measure of ``measures`` (label -> (T,) values) against ``ts / time_unit``.

    ``averages`` (label -> scalar) draws dashed horizontal lines in the matching colours, e.g.
    the time averages S̄_c, S̄_p of Mari et al. Fig. 2(a).
    """
    t = as_array("ts", ts, (None,)) / time_unit
    measures = {label: as_array(f"measures[{label!r}]", values, (len(t),), finite=False)
                for label, values in measures.items()}
    ax = new_axes(ax)
    with style():
        for label, values in measures.items():
            (line,) = ax.plot(t, values, label=label)
            if averages and label in averages:
                ax.axhline(float(averages[label]), color=line.get_color(), ls="--", lw=1.0)
        ax.set_xlabel(time_label)
        ax.set_xlim(t[0], t[-1])
        ax.legend()
    return ax


def sweep_lines(ds, x: str, variables, *, labels=None, markers="osD^v", logy=False, ax=None,
                xlabel=None, ylabel=None):
    """Plot Dataset variables against the swept coordinate ``x``; failed points are masked.

    ``ds`` is a sweep result (``xarray.Dataset`` with a ``status`` variable) or any
    Dataset with coordinate ``x``. Points whose status is not success are left out and marked
    with a grey × along the bottom of the axes, so a failed solve never looks like data.
    """
    ax = new_axes(ax)
    variables = [variables] if isinstance(variables, str) else list(variables)
    labels = labels or variables
    xs = np.asarray(ds[x])
    ok = succeeded(ds)
    ok = np.ones(xs.shape, bool) if ok is None else ok
    with style():
        for k, (var, label) in enumerate(zip(variables, labels)):
            ys = np.where(ok, np.asarray(ds[var], dtype=float), np.nan)
            ax.plot(xs, ys, marker=markers[k % len(markers)], label=label)
        if not ok.all():
            shown = "failed" in ax.get_legend_handles_labels()[1]
            ax.plot(xs[~ok], np.full(int((~ok).sum()), 0.02), "x", color="0.5", ms=3,
                    transform=ax.get_xaxis_transform(), label=None if shown else "failed")
        ax.set_xlabel(xlabel or x)
        if ylabel:
            ax.set_ylabel(ylabel)
        if logy:
            ax.set_yscale("log")
        ax.legend()
    return ax
