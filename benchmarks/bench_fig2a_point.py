"""One Fig. 2(a) point of Mari et al. (2013): qsync_jax against SciPy with NumPy and numba.

The point, the equations and the baselines are those of ``benchmarks/_baselines.py``: from the
default initial state to t = ``--t-final`` (2000 by default, in units of 1/ω₁) at
rtol = atol = 1e-8, returning the time averages S̄_c, S̄_p between the mechanical modes over
(t_final/2, t_final).

Side by side, in one run and one JSON file (``benchmarks/results/``):

- qsync_jax (``qs.time_average`` with ``qs.SyncMeasures``) for each solver in ``--solvers``,
  with the default loop (``SolverConfig(loop="auto")``: the lean loop) and with Diffrax's
  (``loop="diffrax"``): compile time (first call minus the best warm call) apart from run time
  (best of ``--repeats`` warm calls, wall and CPU), steps, µs per step and the fraction of one
  core's float64 peak (``_baselines.flops_per_step`` / time per step / a measured dense product);
- SciPy ``solve_ivp`` (DOP853, same tolerances and window) with a plain vectorized NumPy
  right-hand side and with a numba-compiled one (if numba is installed);
- ratios per core (baseline CPU time / qsync_jax CPU time) and in wall time, with the cores each
  side kept busy (CPU / wall), and the relative difference of the averages (checked < 1e-5).
- the same solve as a trajectory (``qs.evolve`` to t_final, default loop and solver), saving S_c
  and S_p at one time (t_final) and at 2001 times from t_final / 2001 (Fig. 2(a)'s time
  series): run time and µs per step against the time average's (the cost of saving).

On a shared machine run it when it is quiet: CPU-time ratios are robust to other processes, wall
times are not.

Usage: ``python benchmarks/bench_fig2a_point.py [--t-final 2000] [--solvers Dopri8,Tsit5]``
"""

import argparse
import os
import time
from pathlib import Path

import diffrax as dfx
import jax
from _baselines import (
    ATOL,
    FIG2A,
    RTOL,
    check_agreement,
    float64_peak_per_core,
    flops_per_step,
    numba_rhs,
    numpy_rhs,
    scipy_point,
)
from _common import best_of, metadata, write_report

import qsync_jax as qs

jax.config.update("jax_enable_x64", True)


def jax_point(solver_name, loop, window, repeats, peak):
    model = qs.optomechanical_pair(**FIG2A)
    solver = getattr(dfx, solver_name)()
    config = qs.SolverConfig(solver=solver, rtol=RTOL, atol=ATOL, loop=loop)
    measures = qs.SyncMeasures((1, 3))

    def run():
        return jax.block_until_ready(qs.time_average(model, measures, window, config=config))

    first = time.perf_counter()
    result = run()
    first = time.perf_counter() - first
    result, wall, cpu = best_of(run, repeats)
    steps = int(result.num_steps)
    us_per_step = 1e6 * cpu / steps
    return {
        "solver": solver_name,
        "loop": loop,
        "S_c": float(result.value["complete_sync"][0]),
        "S_p": float(result.value["phase_sync"][0]),
        "status": str(qs.status_names(result.status)),
        "num_steps": steps,
        "compile_s": first - wall,
        "run_wall_s": wall,
        "run_cpu_s": cpu,
        "cores_used": cpu / wall,
        "us_per_step_cpu": us_per_step,
        "fraction_of_float64_peak": flops_per_step(solver) / (us_per_step * 1e-6) / peak,
    }


def jax_trajectory(n_saves, t_final, repeats):
    """``qs.evolve`` of the point to t_final, saving S_c and S_p at ``n_saves`` times."""
    model = qs.optomechanical_pair(**FIG2A)
    config = qs.SolverConfig(rtol=RTOL, atol=ATOL)
    ts = jax.numpy.linspace(t_final / n_saves, t_final, n_saves)  # S_p is undefined at t = 0

    def run():
        return jax.block_until_ready(qs.evolve(model, ts, config=config,
                                               save=qs.SyncMeasures((1, 3))))

    run()
    result, wall, cpu = best_of(run, repeats)
    steps = int(result.num_steps)
    return {"saves": n_saves, "status": str(qs.status_names(result.status)),
            "num_steps": steps, "run_wall_s": wall, "run_cpu_s": cpu,
            "us_per_step_cpu": 1e6 * cpu / steps}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--t-final", type=float, default=2000.0)
    parser.add_argument("--solvers", default="Dopri8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    window = (args.t_final / 2, args.t_final)

    peak = float64_peak_per_core()
    report = {"benchmark": "fig2a_point", "metadata": metadata(), "params": FIG2A,
              "t_final": args.t_final, "window": window, "rtol": RTOL, "atol": ATOL,
              "float64_peak_flops_per_core": peak, "flops_per_step_dopri8": flops_per_step()}
    print(f"devices: {report['metadata']['devices']}  load: {os.getloadavg()[0]:.1f}  "
          f"float64 peak {peak / 1e9:.1f} GFlop/s per core", flush=True)
    baselines = {"scipy_numpy": numpy_rhs()}
    if (rhs := numba_rhs()) is not None:
        baselines["scipy_numba"] = rhs
    report["baselines"] = {}
    for name, rhs in baselines.items():
        row = report["baselines"][name] = scipy_point(rhs, window)
        print(f"  {name}: {row['run_wall_s']:.2f} s wall, {row['run_cpu_s']:.2f} s CPU, "
              f"{row['num_steps']} steps; S_c = {row['S_c']:.10f}, S_p = {row['S_p']:.10f}",
              flush=True)
    reference = report["baselines"]["scipy_numpy"]
    report["qsync_jax"] = []
    for name in args.solvers.split(","):
        for loop in ("auto", "diffrax"):
            row = jax_point(name, loop, window, args.repeats, peak)
            row["max_rel_diff_vs_scipy"] = check_agreement(reference, row)
            for base, ref in report["baselines"].items():
                row[f"speedup_per_core_vs_{base}"] = ref["run_cpu_s"] / row["run_cpu_s"]
                row[f"speedup_wall_vs_{base}"] = ref["run_wall_s"] / row["run_wall_s"]
            report["qsync_jax"].append(row)
            ratios = ", ".join(
                f"x{row[f'speedup_per_core_vs_{b}']:.1f} per core / "
                f"x{row[f'speedup_wall_vs_{b}']:.1f} wall vs {b}" for b in report["baselines"])
            print(f"  {name} ({loop}): run {row['run_wall_s']:.3f} s wall / "
                  f"{row['run_cpu_s']:.3f} s CPU, compile {row['compile_s']:.1f} s, "
                  f"{row['num_steps']} steps, {row['us_per_step_cpu']:.2f} µs/step, "
                  f"{100 * row['fraction_of_float64_peak']:.1f} % of peak; {ratios}; "
                  f"rel. diff {row['max_rel_diff_vs_scipy']:.1e}", flush=True)

    average = next(r for r in report["qsync_jax"] if r["loop"] == "auto")
    report["trajectory"] = []
    for n_saves in (1, 2001):
        row = jax_trajectory(n_saves, args.t_final, args.repeats)
        row["cpu_vs_time_average"] = row["run_cpu_s"] / average["run_cpu_s"]
        report["trajectory"].append(row)
        print(f"  evolve, {n_saves} saves: {row['run_cpu_s']:.3f} s CPU, {row['num_steps']} steps, "
              f"{row['us_per_step_cpu']:.2f} µs/step ({row['cpu_vs_time_average']:.2f}x the "
              f"time average)", flush=True)

    write_report("bench_fig2a_point", report, args.output)


if __name__ == "__main__":
    main()
