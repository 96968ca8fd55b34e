"""notebooks/*.md: every notebook in notebooks/, executed at reduced size, with its outputs.

The notebooks are stored without outputs. Here each runs as the tests run it
(``QSYNC_NOTEBOOK_QUICK=1``, a kernel on this interpreter), with matplotlib's inline backend so
that figures become outputs, and becomes a Markdown
page: markdown cells as they are, code cells as Python blocks, text outputs as text blocks,
figures as PNG files. Executed notebooks are cached in ``build/docs-notebooks/`` under a hash of
the notebook and of the library's source, so a rebuild reruns only what changed. A notebook that
fails fails the build.
"""

import base64
import hashlib
import os
import pathlib
import re
import sys
import tempfile

import mkdocs_gen_files
import nbclient
import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"),
                   key=lambda p: (p.stem != "quickstart", p.stem))  # the quickstart first
CACHE = ROOT / "build" / "docs-notebooks"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# XLA's own C++ log lines (absl format: "E1202 16:31:32.371726   30068 file.cc:123] ..."): compiler
# diagnostics with timestamps and process ids, not output of the notebook's code.
XLA_LOG = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w./-]+:\d+\] [^\n]*\n?")


def _library_hash() -> bytes:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "qsync_jax").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + path.read_bytes())
    return digest.digest()


def _executed(path: pathlib.Path, library: bytes) -> nbformat.NotebookNode:
    key = hashlib.sha256(library + path.read_bytes()).hexdigest()[:16]
    cached = CACHE / f"{path.stem}-{key}.ipynb"
    if cached.exists():
        return nbformat.read(cached, as_version=4)
    print(f"docs: executing {path.name} (QSYNC_NOTEBOOK_QUICK=1)", file=sys.stderr)
    nb = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # inline figures
    env["QSYNC_NOTEBOOK_QUICK"] = "1"
    with tempfile.TemporaryDirectory() as cwd:
        client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                         resources={"metadata": {"path": cwd}})
        client.execute(env=env)
    CACHE.mkdir(parents=True, exist_ok=True)
    for stale in CACHE.glob(f"{path.stem}-*.ipynb"):
        stale.unlink()
    nbformat.write(nb, cached)
    return nb


def _fence(text: str, lang: str) -> list[str]:
    return [f"```{lang}", text.rstrip("\n"), "```", ""]


def _streams(outputs: list) -> list:
    """The outputs with consecutive text of one stream joined, as a terminal shows it: a line
    rewritten with carriage returns (progress bars) shows its last state; XLA's log lines are
    dropped."""
    merged = []
    for out in outputs:
        if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                and merged[-1].name == out.name):
            merged[-1] = nbformat.from_dict({**merged[-1], "text": merged[-1].text + out.text})
        else:
            merged.append(out)
    for out in merged:
        if out.output_type == "stream":
            text = XLA_LOG.sub("", ANSI.sub("", out.text))
            out.text = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1]
                                 for line in text.split("\n"))
    return [out for out in merged if out.output_type != "stream" or out.text.strip()]


def _markdown(stem: str, nb: nbformat.NotebookNode) -> tuple[str, str]:
    """(title, page) of an executed notebook; figures are written next to the page."""
    title, lines, n_figures = stem.replace("_", " ").capitalize(), [], 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = re.match(r"#\s+(.+)", cell.source)
            if heading and not lines:
                title = heading.group(1).strip()
            lines += [cell.source, ""]
        elif cell.cell_type == "code" and cell.source.strip():
            lines += _fence(cell.source, "python")
            for out in _streams(cell.outputs):
                if out.output_type == "stream":
                    lines += _fence(out.text, "text")
                elif "image/png" in out.get("data", {}):
                    n_figures += 1
                    name = f"{stem}_files/figure_{n_figures}.png"
                    with mkdocs_gen_files.open(f"notebooks/{name}", "wb") as f:
                        f.write(base64.b64decode(out.data["image/png"]))
                    lines += [f"![Figure {n_figures}]({name})", ""]
                elif "text/plain" in out.get("data", {}):
                    lines += _fence(ANSI.sub("", out.data["text/plain"]), "text")
    note = (f"!!! note \"Executed at reduced size\"\n    `notebooks/{stem}.ipynb`, run for this"
            " page with `QSYNC_NOTEBOOK_QUICK=1` (shorter runs, coarser grids, same code). Open"
            " it in Jupyter for the full-size run.\n")
    if lines and lines[0].startswith("# "):
        return title, "\n".join([lines[0], "", note, *lines[1:]])
    return title, "\n".join([f"# {title}", "", note, *lines])


def main() -> None:
    library = _library_hash()
    nav = mkdocs_gen_files.Nav()
    for path in NOTEBOOKS:
        title, page = _markdown(path.stem, _executed(path, library))
        with mkdocs_gen_files.open(f"notebooks/{path.stem}.md", "w") as f:
            f.write(page)
        nav[title] = f"{path.stem}.md"
    with mkdocs_gen_files.open("notebooks/SUMMARY.md", "w") as f:
        f.writelines(nav.build_literate_nav())


main()
