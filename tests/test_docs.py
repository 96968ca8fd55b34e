"""Every ```python block in README.md and docs/**/*.md runs, so the examples cannot rot.

The blocks of one file run in order in one namespace (a page builds on its earlier blocks), in a
temporary working directory, with float64 enabled (tests/conftest.py). Markers, HTML comments
invisible on the rendered page:

- ``<!-- skip: next -->`` on the line before a block: the block is not run (say why nearby);
- ``<!-- test: slow -->`` anywhere in a file: its blocks run only with ``-m slow``
  (``make test-all``);
- ``<!-- requires: qsync_jax.NAME -->`` anywhere in a file: the file is skipped, with that
  reason, while ``qsync_jax`` has no ``NAME`` (a page written ahead of its feature).
"""

import pathlib
import re

import pytest

import qsync_jax

ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md"] + sorted(
    p for p in (ROOT / "docs").rglob("*.md") if "_scripts" not in p.parts
)
BLOCK = re.compile(r"^(?P<marker><!-- skip: next -->\n)?```python\n(?P<code>.*?)^```$",
                   re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of the blocks to run, in order."""
    return [(text.count("\n", 0, m.start("code")) + 1, m.group("code"))
            for m in BLOCK.finditer(text) if not m.group("marker")]


REQUIRES = re.compile(r"<!-- requires: qsync_jax\.(\w+) -->")


def _param(path: pathlib.Path):
    text = path.read_text()
    marks = [pytest.mark.slow] if "<!-- test: slow -->" in text else []
    missing = [name for name in REQUIRES.findall(text) if not hasattr(qsync_jax, name)]
    if missing:
        marks.append(pytest.mark.skip(reason=f"qsync_jax has no {', '.join(missing)} yet"))
    return pytest.param(path, id=str(path.relative_to(ROOT)), marks=marks)


def test_block_extraction():
    text = ("a\n```python\nx = 1\n```\n"
            "<!-- skip: next -->\n```python\nraise\n```\n"
            "```bash\nls\n```\n")
    assert python_blocks(text) == [(3, "x = 1\n")]


@pytest.mark.parametrize("path", [_param(p) for p in FILES])
def test_code_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for line, code in python_blocks(path.read_text()):
        try:
            # Padding keeps the file's line numbers in tracebacks.
            exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
        except Exception as error:
            pytest.fail(f"{path.relative_to(ROOT)}, block at line {line}: "
                        f"{type(error).__name__}: {error}")
