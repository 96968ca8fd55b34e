"""Every performance figure in README.md comes from ``benchmarks/results/*.json``.

The table between the README's performance markers must be exactly what
``benchmarks/readme_table.py`` writes from the result files in the repository, and the rest of
the performance section carries no figures of its own (no ratios, no timings).
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "readme_table.py"
README = ROOT / "README.md"

if not SCRIPT.exists() or not README.exists():  # an installed package without the repository
    pytest.skip("needs the repository's README.md and benchmarks/", allow_module_level=True)


def _module():
    spec = importlib.util.spec_from_file_location("readme_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rt = _module()


def _performance_section(text: str) -> str:
    start = text.index("## Performance")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_readme_table_is_generated_from_the_results():
    readme = README.read_text(encoding="utf-8")
    table, skipped = rt.table()
    assert not skipped, skipped
    assert rt.with_table(readme, table) == readme, (
        "README.md's performance table differs from benchmarks/results/*.json: "
        "run python benchmarks/readme_table.py")
    assert table.count("\n") >= 3, "the table has no rows"


def test_no_figures_outside_the_generated_table():
    section = _performance_section(README.read_text(encoding="utf-8"))
    head, rest = section.split(rt.START)
    _, tail = rest.split(rt.END)
    for prose in (head, tail):
        figures = re.findall(r"\d[\d.,\s]*(?:×|x\b|\s?(?:s|ms|µs|ns|MB|MiB|GB)\b|%)", prose)
        assert not figures, f"hand-written performance figures in README.md: {figures}"


def test_a_changed_figure_is_caught(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for f in (ROOT / "benchmarks" / "results").glob("*.json"):
        (results / f.name).write_text(f.read_text())
    before, _ = rt.table(results)
    wigner = next(results.glob("bench_wigner_*.json"))
    report = json.loads(wigner.read_text())
    report["speedup"]["jax_gaussian_vs_numpy_heun_per_core"] *= 3.0
    wigner.write_text(json.dumps(report))
    after, _ = rt.table(results)
    assert after != before


def test_a_result_without_its_fields_is_left_out(tmp_path):
    (tmp_path / "bench_wigner_x_cpu.json").write_text(json.dumps({"metadata": {}}))
    table, skipped = rt.table(tmp_path)
    assert "bench_wigner_x_cpu.json" in skipped[0] and "Wigner" not in table


def test_markers_are_required():
    with pytest.raises(ValueError, match="perf-table"):
        rt.with_table("no markers here", "| table |")


@pytest.mark.parametrize(
    "x, text",
    [(0.2449, "0.24"), (12.3, "12"), (99.96, "100"), (1268.0, "1300"), (21000.0, "21 000"),
     (1.1e-15, "1.1e-15"), (0.1, "0.10"), (3.0, "3.0")],
)
def test_number_format(x, text):
    assert rt.num(x) == text


def test_seconds_format():
    assert [rt.seconds(s) for s in (12.0, 0.24, 9.8e-5, 4.3e-7)] == [
        "12 s", "240 ms", "98 µs", "430 ns"]
