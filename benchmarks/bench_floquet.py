"""Window averages at Fig. 2(a) parameters: Floquet propagation against the direct solve.

The optomechanical pair of Fig. 2(a) of Mari et al. (ω = (1, 1.005), κ = 0.15, γ = 0.005,
g = 0.005, E = 48, μ = 0.02, n_th = 0), S̄_c and S̄_p of the mechanical modes over windows
``--windows`` (default [1000, 2000], [2000, 4000], [20000, 21000]), computed side by side in one
process by

- ``qs.time_average(model, measures, window)`` — the direct solve (integrates up to t_b);
- ``qs.time_average(model, measures, window, method="floquet")`` — the transient up to
  ``--t-transient``, a few periods of the locked orbit, then linear algebra.

For each: compile time (first call minus the best warm call) apart from the run time (best of
``--repeats`` warm calls, wall and CPU, the two methods' calls alternating), the relative
difference of the averages, and the CPU speed-up. A direct solve at rtol = atol = 1e-11 (not
timed) is the accuracy reference of both: at t ~ 20000 the direct solve at the default 1e-8
carries a phase error of its own. JSON via ``benchmarks/_common.py`` into
``benchmarks/results/``.

Usage: ``python benchmarks/bench_floquet.py [--t-transient T] [--repeats 10]``
"""

import argparse
import inspect
import time
from pathlib import Path

import jax
from _common import metadata, write_report

import qsync_jax as qs
from qsync_jax._floquet import floquet_time_average

jax.config.update("jax_enable_x64", True)

PARAMS = dict(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02, n_th=0.0)
WINDOWS = "1000:2000,2000:4000,20000:21000"
TIGHT = qs.SolverConfig(rtol=1e-11, atol=1e-11)


def timed(runs, repeats):
    """Compile (first call), then ``repeats`` warm calls of each run, alternating so that both
    see the same load on a shared machine; per run its result and timings."""
    results, firsts, walls, cpus = [], [], [[] for _ in runs], [[] for _ in runs]
    for run in runs:
        first = time.perf_counter()
        results.append(jax.block_until_ready(run()))
        firsts.append(time.perf_counter() - first)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            results[i] = jax.block_until_ready(run())
            walls[i].append(time.perf_counter() - wall)
            cpus[i].append(time.process_time() - cpu)
    return [(result, {"compile_s": first - min(wall), "run_wall_s": min(wall),
                      "run_cpu_s": min(cpu), "num_steps": int(result.num_steps),
                      "status": str(qs.status_names(result.status))})
            for result, first, wall, cpu in zip(results, firsts, walls, cpus)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", default=WINDOWS)
    parser.add_argument("--t-transient", type=float, default=None,
                        help="default: the library's (floquet_time_average)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    windows = [tuple(float(v) for v in w.split(":")) for w in args.windows.split(",")]
    model = qs.optomechanical_pair(**PARAMS)
    measures = qs.SyncMeasures((1, 3))
    floquet_keywords = {} if args.t_transient is None else {"t_transient": args.t_transient}
    t_transient = inspect.signature(floquet_time_average).parameters["t_transient"].default
    report = {"benchmark": "floquet", "metadata": metadata(), "params": PARAMS,
              "t_transient": floquet_keywords.get("t_transient", t_transient), "rows": []}
    for window in windows:
        (direct, d), (floquet, f) = timed(
            [lambda: qs.time_average(model, measures, window),
             lambda: qs.time_average(model, measures, window, method="floquet",
                                     **floquet_keywords)], args.repeats)
        row = {"window": window, "direct": d, "floquet": f,
               "S_c": [float(direct.value["complete_sync"][0]),
                       float(floquet.value["complete_sync"][0])],
               "S_p": [float(direct.value["phase_sync"][0]),
                       float(floquet.value["phase_sync"][0])]}
        row["max_rel_diff"] = max(abs(b / a - 1) for a, b in (row["S_c"], row["S_p"]))
        ref = qs.time_average(model, measures, window, config=TIGHT).value
        row["reference_1e-11"] = [float(ref[k][0]) for k in ("complete_sync", "phase_sync")]
        for name, result in (("direct", direct), ("floquet", floquet)):
            row[f"max_rel_diff_{name}_vs_reference"] = max(
                abs(float(result.value[k][0]) / r - 1)
                for k, r in zip(("complete_sync", "phase_sync"), row["reference_1e-11"]))
        row["speedup_cpu"] = d["run_cpu_s"] / f["run_cpu_s"]
        row["speedup_wall"] = d["run_wall_s"] / f["run_wall_s"]
        report["rows"].append(row)
        print(f"{window}: direct {d['run_cpu_s']:.3f} s CPU ({d['num_steps']} steps), floquet "
              f"{f['run_cpu_s']:.4f} s CPU (x{row['speedup_cpu']:.1f}); compile "
              f"{d['compile_s']:.1f} / {f['compile_s']:.1f} s; S_c {row['S_c'][0]:.8f} / "
              f"{row['S_c'][1]:.8f}, S_p {row['S_p'][0]:.8f} / {row['S_p'][1]:.8f}, "
              f"rel. diff {row['max_rel_diff']:.1e}; vs 1e-11 reference: direct "
              f"{row['max_rel_diff_direct_vs_reference']:.1e}, floquet "
              f"{row['max_rel_diff_floquet_vs_reference']:.1e}", flush=True)
    write_report("bench_floquet", report, args.output)


if __name__ == "__main__":
    main()
