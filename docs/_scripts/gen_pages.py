"""changelog.md (from CHANGELOG.md) and gallery.md (every PNG in docs/gallery/)."""

import pathlib

import mkdocs_gen_files

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Captions of the reproduced figures; a new PNG appears with its file name as caption.
CAPTIONS = {
    "mari2013_fig2a": "Mari et al. Fig. 2(a): S_c(t), S_p(t) and their time averages",
    "mari2013_fig2b": "Mari et al. Fig. 2(b): time averages and discord vs μ",
    "mari2013_fig2c": "Mari et al. Fig. 2(c): vs bath occupation n_b",
    "mari2013_fig2d": "Mari et al. Fig. 2(d): ring of 20 sites, vs distance h",
    "mari2013_footnote36": "Mari et al., footnote 36",
    "bittner2025_fig1": "Bittner & Tyagi Fig. 1: drift spectrum vs ξ, exceptional points",
    "bittner2025_fig2": "Bittner & Tyagi Fig. 2: mean fields for ξ = −1, 0, +1",
    "bittner2025_fig3": "Bittner & Tyagi Fig. 3: phase-locking value vs ξ",
    "bittner2025_fig4": "Bittner & Tyagi Fig. 4: steady-state correlations and heat current",
}

with mkdocs_gen_files.open("changelog.md", "w") as f:
    f.write((ROOT / "CHANGELOG.md").read_text())

lines = [
    "# Gallery",
    "",
    "The papers' figures, produced by `qsync reproduce all --out docs/gallery` (the command also",
    "writes the data behind each PNG, every parameter included, as NetCDF or JSON next to it).",
    "Where a paper's printed formula is wrong, the figure shows what its master equation gives;",
    "see [Physics notes and errata](physics-notes.md).",
    "",
]
for png in sorted((ROOT / "docs" / "gallery").glob("*.png")):
    caption = CAPTIONS.get(png.stem, png.stem.replace("_", " "))
    lines += [f"## {caption}", "", f"![{caption}](gallery/{png.name})", ""]
with mkdocs_gen_files.open("gallery.md", "w") as f:
    f.write("\n".join(lines))
