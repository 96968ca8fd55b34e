"""``qsync simulate`` end to end, cold and warm compilation cache, against the solve it runs.

The command: ``qsync simulate --model pair --t-final 2000 --average-from 1000`` (the Fig. 2(a)
pair, rtol = atol = 1e-8, S̄_c and S̄_p over [1000, 2000]). Side by side, in one run and one JSON
file (``benchmarks/results/``):

- **end to end**: wall and CPU time of the whole command in a fresh process, ``--repeats`` times
  each: *cold* (an empty persistent compilation cache: XLA compiles, and writes the cache),
  *warm* (a second process with the same cache: XLA's output is loaded), and ``--no-compile-cache``;
  plus ``import qsync_jax`` alone (loading the lazy package), the floor of any command;
- **where a cold start goes**, in this process: the same solve through the public API
  (``qs.time_average`` under ``jax.jit``) split into tracing (Python → jaxpr), lowering
  (jaxpr → StableHLO) and XLA compilation, each timed apart;
- **the solve**: the warm call (best of ``--repeats``, ``block_until_ready``), wall and CPU;
- ``qsync sweep`` of four such points (μ varied, one chunk on every core), cold and warm.

Ratios reported: warm end to end / solve, cold end to end / solve (targets: warm ≤ 3×; XLA
compilation of one point ≤ 3 s on a quiet machine).

Usage: ``python benchmarks/bench_cli.py [--repeats 3]``
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
from _common import best_of, metadata, write_report

import qsync_jax as qs
from qsync_jax._cli._simulate import _mechanical_measures

jax.config.update("jax_enable_x64", True)

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["simulate", "--model", "pair", "--t-final", "2000", "--average-from", "1000"]
WINDOW = (1000.0, 2000.0)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_LOGGED = {  # JAX_LOG_COMPILES=1 lines → what they time
    "xla_compile": re.compile(r"Finished XLA compilation of (.+) in ([\d.]+) sec"),
    "to_mlir": re.compile(r"Finished jaxpr to MLIR module conversion (.+) in ([\d.]+) sec"),
    "trace": re.compile(r"Finished tracing (.+) for jit in ([\d.]+) sec"),
}


def _compile_log(stderr: str) -> dict:
    """Programs compiled or loaded from cache, XLA time, longest tracing (nested jits overlap)."""
    found = {k: [(m[0], float(m[1])) for m in r.findall(stderr)] for k, r in _LOGGED.items()}
    return {
        "programs": len(found["xla_compile"]),
        "xla_compile_total_s": sum(t for _, t in found["xla_compile"]),
        "to_mlir_total_s": sum(t for _, t in found["to_mlir"]),
        "longest_trace_s": max((t for _, t in found["trace"]), default=0.0),
        "cache_hits": stderr.count("Persistent compilation cache hit"),
    }


def timed_process(args, env) -> dict:
    """Wall and CPU time of ``python args`` in a fresh process (CPU summed over its threads),
    with JAX's compile log summarized (``JAX_LOG_COMPILES=1``)."""
    cpu, wall = _children_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=env | {"JAX_LOG_COMPILES": "1"}, cwd=ROOT, timeout=1800)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{proc.stderr}")
    return {"wall_s": wall, "cpu_s": cpu, "stdout": proc.stdout, "log": _compile_log(proc.stderr)}


def _best(runs: list[dict]) -> dict:
    """The fastest run (by wall time) of several, with every wall time."""
    best = min(runs, key=lambda r: r["wall_s"])
    return {"wall_s": best["wall_s"], "cpu_s": best["cpu_s"], "compile_log": best["log"],
            "wall_s_all": [r["wall_s"] for r in runs]}


def end_to_end(repeats: int) -> dict:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    env.pop("QSYNC_JAX_NO_CACHE", None)
    runs = {"import_only": [], "cold": [], "warm": [], "no_cache": []}
    command_time = []
    for _ in range(repeats):
        # the attribute loads the (lazy) package: JAX, Diffrax, the models
        runs["import_only"].append(timed_process(
            ["-c", "import qsync_jax as qs; qs.time_average"], env))
        with tempfile.TemporaryDirectory() as cache:
            cached = env | {"QSYNC_JAX_CACHE_DIR": cache}
            runs["cold"].append(timed_process(["-m", "qsync_jax", *COMMAND], cached))
            runs["warm"].append(timed_process(["-m", "qsync_jax", *COMMAND], cached))
            command_time.append(json.loads(runs["warm"][-1]["stdout"])["wall_time_s"])
            entries = [p for p in Path(cache).rglob("*") if p.is_file()]
            cache_files = {"entries": len(entries), "bytes": sum(p.stat().st_size for p in entries)}
        runs["no_cache"].append(
            timed_process(["-m", "qsync_jax", "--no-compile-cache", *COMMAND], env))
    out = {name: _best(rs) for name, rs in runs.items()}
    out["warm"]["command_reported_wall_s"] = min(command_time)  # after imports and start-up
    out["result"] = json.loads(runs["warm"][-1]["stdout"])
    out["cache_files"] = cache_files
    return out


SWEEP_TOML = """
[model]
kind = "pair"
[measure]
window = [1000.0, 2000.0]
[sweep]
batch_size = 4
[sweep.axes]
mu = [0.02, 0.025, 0.03, 0.035]
"""


def sweep_end_to_end(repeats: int) -> dict:
    """``qsync sweep`` of 4 Fig. 2(a)-type points (μ varied, one chunk): cold and warm cache."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    env.pop("QSYNC_JAX_NO_CACHE", None)
    runs = {"cold": [], "warm": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as work:
            config = Path(work) / "sweep.toml"
            config.write_text(SWEEP_TOML)
            cached = env | {"QSYNC_JAX_CACHE_DIR": str(Path(work) / "cache")}
            for name in ("cold", "warm"):
                args = ["-m", "qsync_jax", "sweep", str(config), "--out",
                        str(Path(work) / f"{name}.nc"), "--no-progress"]
                runs[name].append(timed_process(args, cached))
    return {name: _best(rs) for name, rs in runs.items()} | {
        "points": 4, "config": SWEEP_TOML.strip()}


def compile_split(repeats: int) -> dict:
    """Trace, lower, XLA-compile and run the command's solve through the public API."""
    model = qs.optomechanical_pair(**qs.MARI2013_FIG2)
    measures = _mechanical_measures  # the command's own integrand: the same solve, step by step
    config = qs.SolverConfig(rtol=1e-8, atol=1e-8)

    @jax.jit
    def point(model):
        return qs.time_average(model, measures, WINDOW, config=config, throw=False)

    phases = {}

    def phase(name, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        phases[f"{name}_s"] = time.perf_counter() - wall
        phases[f"{name}_cpu_s"] = time.process_time() - cpu
        return out

    traced = phase("trace", lambda: point.trace(model))
    lowered = phase("lower", traced.lower)
    compiled = phase("xla_compile", lowered.compile)
    n_ops = sum(1 for line in lowered.as_text().splitlines() if " = " in line)
    result, wall, cpu = best_of(lambda: jax.block_until_ready(compiled(model)), repeats)
    return {
        **phases, "stablehlo_ops": n_ops,
        "solve_wall_s": wall, "solve_cpu_s": cpu,
        "num_steps": int(result.num_steps), "status": str(qs.status_names(result.status)),
        "S_c": float(result.value["S_c"]),
        "S_p": float(result.value["S_p"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--no-sweep", action="store_true", help="skip the qsync sweep runs")
    args = parser.parse_args()

    split = compile_split(args.repeats)
    print(f"solve {split['solve_wall_s']:.3f} s wall ({split['solve_cpu_s']:.3f} s CPU), "
          f"trace {split['trace_s']:.2f} s, lower {split['lower_s']:.2f} s, "
          f"XLA compile {split['xla_compile_s']:.2f} s ({split['stablehlo_ops']} StableHLO ops)")
    e2e = end_to_end(args.repeats)
    solve = split["solve_wall_s"]
    ratios = {f"{name}_over_solve": e2e[name]["wall_s"] / solve
              for name in ("import_only", "cold", "warm", "no_cache")}
    for name in ("import_only", "cold", "warm", "no_cache"):
        print(f"{name:12s} {e2e[name]['wall_s']:6.2f} s wall, {e2e[name]['cpu_s']:6.2f} s CPU "
              f"= {ratios[name + '_over_solve']:.1f}× the solve")
    sweep = None if args.no_sweep else sweep_end_to_end(args.repeats)
    if sweep:
        print(f"qsync sweep (4 points): cold {sweep['cold']['wall_s']:.2f} s wall "
              f"({sweep['cold']['cpu_s']:.2f} s CPU), warm {sweep['warm']['wall_s']:.2f} s wall "
              f"({sweep['warm']['cpu_s']:.2f} s CPU)")
    assert abs(e2e["result"]["window_mean"]["S_c"] - split["S_c"]) <= 1e-12 * abs(split["S_c"])
    write_report("bench_cli", {
        "metadata": metadata(),
        "command": "qsync " + " ".join(COMMAND),
        "cores_each_side": 1,
        "compile_split": split,
        "end_to_end": e2e,
        "ratios": ratios,
        "sweep_end_to_end": sweep,
        "targets": {"warm_over_solve_max": 3.0, "cold_xla_compile_s_max": 3.0},
    }, args.output)


if __name__ == "__main__":
    main()
