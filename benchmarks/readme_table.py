"""Write the README's performance table from ``benchmarks/results/*.json``.

Every figure in the table between the markers ``<!-- perf-table:start -->`` and
``<!-- perf-table:end -->`` of README.md is formatted here from a result file, never typed by
hand; ``tests/test_readme_numbers.py`` fails when the README differs from what this script
writes from the JSON in the repository. Rerun it after any benchmark:

    python benchmarks/readme_table.py            # rewrite README.md
    python benchmarks/readme_table.py --check    # exit 1 if README.md is out of date

One function per benchmark turns its JSON into a row; a result file that lacks what its row
needs (a benchmark whose output changed) is reported on stderr and its row left out, never
filled in. A row appears only when its file is present; the first file (sorted by name) of each
benchmark is used.
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"


def num(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` significant digits; plain for 1e-3 ≤ |x| < 1e6 (1300, 21 000)."""
    rounded = float(f"{x:.{digits}g}")
    if rounded == 0 or not 1e-3 <= abs(rounded) < 1e6:
        mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if abs(rounded) >= 10**digits:
        whole = round(rounded)
        return f"{whole:,}".replace(",", " ") if abs(whole) >= 10_000 else str(whole)
    return f"{rounded:#.{digits}g}".rstrip(".")


def seconds(s: float) -> str:
    """A duration with a unit chosen to keep two significant digits readable."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if abs(s) >= scale:
            return f"{num(s / scale)} {unit}"
    return f"{num(s / 1e-9)} ns"


def ratio(x: float) -> str:
    return f"**{num(x)}×**"


def host(report: dict) -> str:
    meta = report.get("metadata", {})
    load = meta.get("load_average_1min_at_start")
    text = f"{meta.get('cpu_count', '?')} cores"
    return text + (f", load {load:.1f} at start" if load is not None else "")


# ------------------------------------------------------------------ one row per benchmark
# Each returns the cells (task, qsync_jax, baseline, ratio, agreement), or a list of them, or
# raises KeyError.


def row_fig2a_point(r):
    b = r["baselines"]
    rows = []
    for q in r["qsync_jax"]:
        rows.append((
            f"one Fig. 2(a) point, t = {num(r['t_final'])}, rtol = atol = {num(r['rtol'])}, "
            f"S̄_c and S̄_p, {q['solver']} (loop `{q['loop']}`; `bench_fig2a_point.py`; {host(r)})",
            f"{seconds(q['run_cpu_s'])} CPU, {num(q['us_per_step_cpu'])} µs per step, "
            f"{num(100 * q['fraction_of_float64_peak'])} % of float64 peak; compile "
            f"{seconds(q['compile_s'])}",
            "SciPy DOP853, vectorized NumPy right-hand side: "
            f"{seconds(b['scipy_numpy']['run_cpu_s'])} CPU; numba right-hand side: "
            f"{seconds(b['scipy_numba']['run_cpu_s'])} CPU",
            f"{ratio(q['speedup_per_core_vs_scipy_numpy'])} per core vs NumPy "
            f"({num(q['speedup_wall_vs_scipy_numpy'])}× wall); "
            f"{num(q['speedup_per_core_vs_scipy_numba'])}× per core vs numba",
            f"{num(q['max_rel_diff_vs_scipy'])} relative",
        ))
    return rows


def row_sweep(r):
    b = r["baselines"]
    rows = []
    for q in r["sweep"]:
        if q["batch_size"] < 2:
            continue
        rows.append((
            f"sweep of {q['points']} Fig. 2(a)-type points, t = {num(r['t_final'])}, "
            f"{q['solver']}, {q['batch_size']} points per chunk (`bench_sweep.py`; {host(r)}, "
            f"{len(r['metadata']['devices'])} devices)",
            f"{seconds(q['cpu_s_per_point'])} CPU per point ({num(q['us_per_point_step_cpu'])} µs "
            f"per point·step), CPU/wall {num(q['cpu_over_wall'])}; "
            f"compile {seconds(q['compile_s'])}",
            f"SciPy DOP853 one point at a time, NumPy right-hand side: "
            f"{seconds(b['scipy_numpy']['best']['cpu_s_per_point'])} CPU per point; numba: "
            f"{seconds(b['scipy_numba']['best']['cpu_s_per_point'])}",
            f"{ratio(q['speedup_per_core_vs_scipy_numpy'])} per core vs NumPy "
            f"({num(q['speedup_wall_vs_scipy_numpy'])}× wall); "
            f"{num(q['speedup_per_core_vs_scipy_numba'])}× per core vs numba",
            f"{num(q['max_rel_diff_vs_scipy'])} relative (first point)",
        ))
    return rows


def row_cli(r):
    s, e = r["compile_split"], r["end_to_end"]
    rows = [(
        "`qsync simulate --model pair --t-final 2000 --average-from 1000`, end to end in a new "
        f"process (`bench_cli.py`; {host(r)})",
        f"cold cache {seconds(e['cold']['wall_s'])} wall ({seconds(e['cold']['cpu_s'])} CPU); "
        f"warm cache {seconds(e['warm']['wall_s'])} wall ({seconds(e['warm']['cpu_s'])} CPU), of "
        f"which `import qsync_jax` {seconds(e['import_only']['wall_s'])}; a cold start traces for "
        f"{seconds(s['trace_s'])}, lowers for {seconds(s['lower_s'])}, compiles (XLA) for "
        f"{seconds(s['xla_compile_s'])}",
        f"the solve alone: {seconds(s['solve_wall_s'])} wall ({seconds(s['solve_cpu_s'])} CPU)",
        f"warm {num(r['ratios']['warm_over_solve'])}×, cold {num(r['ratios']['cold_over_solve'])}× "
        f"the solve in wall time; warm {num(e['warm']['cpu_s'] / s['solve_cpu_s'])}×, cold "
        f"{num(e['cold']['cpu_s'] / s['solve_cpu_s'])}× in CPU time",
        "the command's S̄_c = the library's",
    )]
    sweep = r.get("sweep_end_to_end")
    if sweep:
        rows.append((
            f"`qsync sweep` of {sweep['points']} such points (μ varied, one chunk), end to end "
            f"(`bench_cli.py`)",
            f"cold cache {seconds(sweep['cold']['wall_s'])} wall "
            f"({seconds(sweep['cold']['cpu_s'])} CPU); warm cache "
            f"{seconds(sweep['warm']['wall_s'])} wall ({seconds(sweep['warm']['cpu_s'])} CPU)",
            "the same command with an empty cache",
            f"{ratio(sweep['cold']['wall_s'] / sweep['warm']['wall_s'])} wall, "
            f"{num(sweep['cold']['cpu_s'] / sweep['warm']['cpu_s'])}× CPU",
            "—",
        ))
    return rows


def row_correlated_bath(r):
    q, v, b = r["qsync"], r["vs_baseline"], r["baselines"]
    n = r["params"]["n_xi"]
    best = b[v["best"]]
    name = {"scipy_loop": "SciPy `solve_continuous_lyapunov` in a loop",
            "numpy_batched_kronecker": "vectorized NumPy (batched Kronecker solve)"}[v["best"]]
    fock = r["summary"]["smallest_cutoff_on_target"] or r["summary"]["largest_cutoff"]
    return (
        f"{n} correlated-bath steady states, one vmapped call "
        f"(`bench_correlated_bath_steady_state.py`; {host(r)})",
        f"{seconds(q['run_cpu_s'] / n)} CPU per point ({num(q['cores'])} cores busy); "
        f"compile {seconds(q['compile_s'])}",
        f"{name}: {seconds(best['cpu_s'] / n)} CPU per point ({num(best['cores'])} cores); "
        f"QuTiP `steadystate` at Fock cutoff {fock['cutoff']}: "
        f"{seconds(fock['qutip_s_per_point_cpu'])}",
        f"{ratio(v['speedup_cpu'])} per core, {num(v['speedup_wall'])}× wall",
        f"{num(best['max_abs_diff_cov'])} vs baseline; {num(fock['max_abs_diff'])} vs QuTiP",
    )


def row_quadratic(r):
    p = r["per_point"]
    q, s, v = p["qsync"], p["scipy_loop"], p["numpy_batched_kronecker"]
    best, name = min((s, "SciPy `solve_continuous_lyapunov` loop"),
                     (v, "vectorized NumPy (batched Kronecker)"), key=lambda x: x[0]["cpu_s"])
    return (
        f"{p['n_points']} steady states of a random 4-mode quadratic Lindblad model, vmapped "
        f"(`bench_quadratic_steady_state.py`; {host(r)})",
        f"{seconds(q['cpu_s_per_point'])} CPU per point; compile {seconds(q['compile_s'])}",
        f"{name}: {seconds(best['cpu_s_per_point'])} CPU per point",
        f"{ratio(p['speedup_cpu_vs_best_baseline'])} per core, "
        f"{num(p['speedup_wall_vs_best_baseline'])}× wall",
        f"{num(best['max_abs_diff_cov'])}",
    )


def row_gradients(r):
    t = r["fig2a"]["timings"]
    value, fwd, rev = t["value"], t["forward"], t["reverse"]
    return (
        f"value + gradient of S̄_p w.r.t. (μ, E), Fig. 2(a) point (`bench_gradients.py`; {host(r)})",
        f"value {seconds(value['run_s'])}; forward mode {seconds(fwd['run_s'])}; reverse "
        f"(discrete adjoint) {seconds(rev['run_s'])}, {num(rev['memory_bytes'] / 1e6)} MB",
        "the value alone",
        f"forward {num(fwd['run_s'] / value['run_s'])}×, reverse "
        f"{num(rev['run_s'] / value['run_s'])}× the value",
        f"forward = reverse to {num(rev['max_rel_diff_vs_forward'])}",
    )


def row_floquet(r):
    rows = r["rows"]
    windows = ", ".join(f"[{num(w['window'][0])}, {num(w['window'][1])}]" for w in rows)
    return (
        f"window averages by Floquet propagation, Fig. 2(a) pair, windows {windows}, "
        f"transient to t = {num(r['t_transient'])} (`bench_floquet.py`; {host(r)})",
        "; ".join(f"{seconds(w['floquet']['run_cpu_s'])} CPU" for w in rows),
        "the direct solve of each window, same tolerances: "
        + "; ".join(f"{seconds(w['direct']['run_cpu_s'])} CPU" for w in rows),
        ", ".join(ratio(w["speedup_cpu"]) for w in rows) + " per core",
        "vs a direct solve at rtol 1e-11: "
        + ", ".join(num(w["max_rel_diff_floquet_vs_reference"]) for w in rows),
    )


def row_wigner(r):
    p, ns, sp = r["parameters"], r["ns_per_trajectory_step"], r["speedup"]
    return (
        f"truncated-Wigner ensemble, Fig. 2(a) pair, {p['trajectories']} trajectories × "
        f"{p['steps']} steps of dt = {p['dt']} (`bench_wigner.py`; {host(r)})",
        f"stochastic Heun: {num(ns['jax_gaussian_per_core'])} ns CPU per trajectory·step "
        f"(Gaussian increments), {num(ns['jax_five_point_per_core'])} ns CPU (five-point)",
        f"vectorized NumPy, same dt: Heun {num(ns['numpy_heun_per_core'])} ns CPU, "
        f"Euler–Maruyama {num(ns['numpy_euler_maruyama_per_core'])} ns CPU",
        f"{ratio(sp['jax_gaussian_vs_numpy_heun_per_core'])} per core vs Heun "
        f"({num(sp['jax_five_point_vs_numpy_heun_per_core'])}× five-point); "
        f"{num(sp['jax_gaussian_vs_numpy_euler_maruyama_per_core'])}× vs Euler–Maruyama",
        "same equations and dt",
    )


ROWS = {  # result-file prefix → row; the table's order
    "bench_fig2a_point": row_fig2a_point,
    "bench_sweep": row_sweep,
    "bench_cli": row_cli,
    "bench_gradients": row_gradients,
    "bench_correlated_bath_steady_state": row_correlated_bath,
    "bench_quadratic_steady_state": row_quadratic,
    "bench_floquet": row_floquet,
    "bench_wigner": row_wigner,
}


def table(results: Path = RESULTS) -> tuple[str, list[str]]:
    """The markdown table and the list of result files left out (with the reason)."""
    lines = ["| task | qsync_jax | baseline | ratio | agreement |", "|---|---|---|---|---|"]
    skipped = []
    for prefix, build in ROWS.items():
        files = sorted(results.glob(f"{prefix}_*.json"))
        if not files:
            continue
        try:
            rows = build(json.loads(files[0].read_text()))
        except (KeyError, TypeError, ZeroDivisionError) as error:
            skipped.append(f"{files[0].name}: no {error!s}")
            continue
        for cells in rows if isinstance(rows, list) else [rows]:
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines), skipped


def with_table(readme: str, text: str) -> str:
    """``readme`` with the part between the markers replaced by ``text``."""
    if readme.count(START) != 1 or readme.count(END) != 1:
        raise ValueError(f"README.md must contain {START} and {END} once each")
    head, rest = readme.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{text}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check README.md is current")
    args = parser.parse_args(argv)
    text, skipped = table()
    for line in skipped:
        print(f"left out {line}", file=sys.stderr)
    readme = README.read_text(encoding="utf-8")
    new = with_table(readme, text)
    if args.check:
        if new != readme:
            print("README.md's performance table differs from benchmarks/results/*.json; "
                  "run python benchmarks/readme_table.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    print(f"wrote the performance table of {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
