"""Phase-space pictures: mean-field orbits with covariance ellipses, and Wigner functions."""

import numpy as np
from matplotlib.patches import Ellipse

from ._style import as_array, new_axes, style


def covariance_ellipse(mean, cov, *, n_std=1.0, ax=None, **kwargs):
    """Draw the n_std ellipse of a (2,) mean and (2, 2) single-mode covariance; returns ``ax``."""
    mean, cov = as_array("mean", mean, (2,)), as_array("cov", cov, (2, 2))
    if not (np.isfinite(n_std) and n_std > 0):
        raise ValueError(f"`n_std` must be positive and finite; got {n_std!r}.")
    ax = new_axes(ax)
    vals, vecs = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1]))
    width, height = 2 * n_std * np.sqrt(np.maximum(vals[::-1], 0.0))
    kwargs.setdefault("fill", False)
    kwargs.setdefault("lw", 0.8)
    ax.add_patch(Ellipse(np.asarray(mean), width, height, angle=angle, **kwargs))
    return ax


def orbit(states, mode: int, *, n_ellipses=8, ellipse_scale=1.0, ax=None, label=None):
    """Mean-field orbit (x, p) of ``mode`` along a trajectory, with covariance ellipses.

    ``states`` is a time-batched ``GaussianState``; ``ellipse_scale`` magnifies the ellipses
    (quantum fluctuations are tiny on a limit cycle of radius ~500; the legend says so).
    """
    mean = as_array("states.mean", getattr(states, "mean", None), (None, None))
    cov = as_array("states.cov", states.cov, (len(mean), mean.shape[1], mean.shape[1]))
    n = mean.shape[1] // 2
    if isinstance(mode, bool) or not isinstance(mode, int | np.integer) or not 0 <= mode < n:
        raise ValueError(f"`mode` must be an integer in [0, {n}); got {mode!r}.")
    ax = new_axes(ax)
    mean = mean[:, 2 * mode : 2 * mode + 2]
    cov = cov[:, 2 * mode : 2 * mode + 2, 2 * mode : 2 * mode + 2]
    with style():
        (line,) = ax.plot(mean[:, 0], mean[:, 1], lw=0.8, label=label)
        picks = np.linspace(0, len(mean) - 1, n_ellipses).astype(int) if n_ellipses else []
        for k in picks:
            covariance_ellipse(mean[k], cov[k] * ellipse_scale**2, ax=ax, color=line.get_color())
        ax.set_xlabel(f"⟨x_{mode}⟩")
        ax.set_ylabel(f"⟨p_{mode}⟩")
        ax.set_aspect("equal", adjustable="datalim")
        if ellipse_scale != 1.0:
            ax.set_title(f"ellipses: 1σ × {ellipse_scale:g}", fontsize=8)
    return ax


def wigner_map(xs, ps, values, *, ax=None, cbar=True):
    """Colour map of a single-mode Wigner function sampled on (len(ps), len(xs))."""
    xs, ps = as_array("xs", xs, (None,)), as_array("ps", ps, (None,))
    w = as_array("values", values, (len(ps), len(xs)))
    ax = new_axes(ax)
    with style():
        lim = np.abs(w).max()
        mesh = ax.pcolormesh(np.asarray(xs), np.asarray(ps), w, cmap="RdBu_r", vmin=-lim,
                             vmax=lim, shading="gouraud")
        if cbar:
            ax.figure.colorbar(mesh, ax=ax).set_label("W(x, p)")
        ax.set_xlabel("x")
        ax.set_ylabel("p")
        ax.set_aspect("equal")
    return ax
