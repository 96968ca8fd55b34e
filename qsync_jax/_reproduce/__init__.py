"""Reproduction of the papers' figures: ``qsync reproduce <paper> [--figure F]``.

Each paper module maps figure ids to functions ``(out, quick, progress) -> [paths]`` that compute
the figure with the public API, save it as PNG, and save the data behind it (NetCDF or JSON)
with every parameter used.
"""

from . import bittner2025, mari2013, wigner

PAPERS = {
    "mari2013": mari2013.FIGURES, "bittner2025": bittner2025.FIGURES, "wigner": wigner.FIGURES,
}
