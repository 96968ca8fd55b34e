"""Eigenvalue spectra against a parameter (e.g. the drift of the correlated-bath model vs ξ)."""

import numpy as np

from ._style import as_array, new_axes, style


def spectrum_vs_parameter(values, eigenvalues, *, part="real", parameter_label="ξ",
                          marks=None, ax=None):
    """Plot the real or imaginary parts of ``eigenvalues`` (P, K) against ``values`` (P,).

    Branches are sorted at each parameter value so lines stay continuous through crossings of
    the sorted order; ``marks`` (label -> x) draws vertical dotted lines (e.g. ξ_crit).
    """
    if part not in ("real", "imag"):
        raise ValueError(f"`part` must be 'real' or 'imag'; got {part!r}.")
    values = as_array("values", values, (None,))
    ev = np.asarray(eigenvalues)
    as_array("eigenvalues", np.abs(ev), (len(values), None))
    ax = new_axes(ax)
    parts = ev.real if part == "real" else ev.imag
    parts = np.sort(parts, axis=-1)
    with style():
        for k in range(parts.shape[-1]):
            ax.plot(values, parts[:, k], label=f"branch {k + 1}")
        for label, x in (marks or {}).items():
            ax.axvline(x, ls=":", color="0.3", lw=1.0)
            ax.annotate(label, (x, 0.98), xycoords=("data", "axes fraction"), ha="center",
                        va="top", fontsize=8)
        ax.set_xlabel(parameter_label)
        ax.set_ylabel("Re λ" if part == "real" else "Im λ")
    return ax
