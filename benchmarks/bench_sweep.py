"""Sweep throughput on Fig. 2(a)-type points, against the SciPy per-point baseline.

A point: the optomechanical pair of Mari et al. (2013), Fig. 2(a), integrated to ``t_final``
(default 2000) at rtol = atol = 1e-8, returning the time averages of S_c and S_p between the
mechanical modes over (t_final/2, t_final) (``qs.SyncMeasures((1, 3))``). The sweep varies E
around 48 and n_th in [0, 2) (zip mode) so that the points' step counts differ as in a real scan;
its first point is the Fig. 2(a) point itself.

Reported side by side, in one run and one JSON file (``benchmarks/results/``):

- ``qs.sweep`` throughput (points/s) for one chunk of B points, B in ``--batch-sizes``, with the
  default solver settings (the lean loop, ``SolverConfig(loop="auto")``), and for
  ``--loop-batch-sizes`` with Diffrax's loop over unrolled stages (``qs.Unrolled()``,
  ``loop="diffrax"``; the same method), with compile time apart from run time (a first sweep
  with a tiny window compiles; the timed sweep reuses the compiled chunk), CPU time / wall time
  (the cores kept busy), CPU µs per point-step and how busy the vmapped lanes are (steps the
  points needed over the steps their solver loops ran);
- the baselines of ``benchmarks/_baselines.py`` (SciPy DOP853 with a plain NumPy and with a
  numba right-hand side), one point at a time on one core, run before and after the scan (the
  faster run counts), and the agreement of their averages with the sweep's (checked < 1e-5);
- ratios per core (baseline CPU s per point / sweep CPU s per point) and in wall time;
- peak memory (max RSS of a fresh process) for sweeps of 1, 4, 16 chunks at a fixed batch size;
- on a GPU: throughput for ``--gpu-points`` points (default 10⁵).

On a CPU every core is made a JAX device (``qs.use_cpu_devices``, ``--devices``), so the sweep
splits each chunk over the cores.

Usage: ``python benchmarks/bench_sweep.py [--quick] [--t-final 2000] [--batch-sizes 1,4,...]``
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
from _baselines import ATOL, FIG2A, RTOL, check_agreement, numba_rhs, numpy_rhs, scipy_point
from _common import metadata, write_report

import qsync_jax as qs
from qsync_jax._sweep._execute import Chunks


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--t-final", type=float, default=2000.0)
    parser.add_argument("--batch-sizes", default="1,4,16,64,256,1024,4096")
    parser.add_argument("--solver", default="Dopri8", help="a Diffrax solver class name")
    parser.add_argument("--loop-batch-sizes", default="1,16,256",
                        help="batch sizes also run with Diffrax's own stage loop (not unrolled)")
    parser.add_argument("--devices", type=int, default=os.cpu_count(), help="CPU devices")
    parser.add_argument("--scipy-points", type=int, default=2)
    parser.add_argument("--memory-batch", type=int, default=256)
    parser.add_argument("--memory-chunks", default="1,4,16")
    parser.add_argument("--memory-t-final", type=float, default=20.0)
    parser.add_argument("--gpu-points", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true",
                        help="t_final = 200, batch sizes up to 1024, one SciPy point")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.t_final, args.batch_sizes, args.scipy_points = 200.0, "1,16,256,1024", 1
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.loop_batch_sizes = [int(b) for b in args.loop_batch_sizes.split(",") if b]
    args.memory_chunks = [int(c) for c in args.memory_chunks.split(",") if c]
    return args


ARGS = parse_args()
qs.use_cpu_devices(ARGS.devices)  # on a GPU host, jax.devices() still lists the GPUs
jax.config.update("jax_enable_x64", True)


# ----------------------------------------------------------------------------- JAX side


def fig2a_average(window, config, model):
    return qs.time_average(model, qs.SyncMeasures((1, 3)), window, config=config, throw=False)


def point_function(t_final, config):
    """fn for qs.sweep; the window is an array argument, so changing it does not recompile."""
    window = jnp.asarray([t_final / 2, t_final])
    return jax.tree_util.Partial(fig2a_average, window, config)


def axes(n):
    """n Fig. 2(a)-like points, E in [44, 52) and n_th in [0, 2), from a low-discrepancy
    sequence: the first k points are the same for every n, and point 0 is Fig. 2(a)'s."""
    k = np.arange(n)
    return {"E": 44.0 + 8.0 * ((0.5 + k * 0.6180339887498949) % 1.0),
            "n_th": 2.0 * ((k * 0.7548776662466927) % 1.0)}


def timed_sweep(fn, model, n, batch_size):
    wall, cpu = time.perf_counter(), time.process_time()
    ds = qs.sweep(fn, model, axes(n), mode="zip", batch_size=batch_size, progress=False)
    return ds, time.perf_counter() - wall, time.process_time() - cpu


def sweep_throughput(model, config, batch_size, t_final, label):
    warm = point_function(1e-3, config)
    _, compile_s, _ = timed_sweep(warm, model, batch_size, batch_size)
    ds, wall, cpu = timed_sweep(point_function(t_final, config), model, batch_size, batch_size)
    ok = ds.status.values == "success"
    return ds, {
        "solver": label,
        "cpu_s_per_point": cpu / batch_size,
        "wall_s_per_point": wall / batch_size,
        "batch_size": batch_size,
        "points": batch_size,
        "compile_s": compile_s,
        "run_s": wall,
        "points_per_s": batch_size / wall,
        "cpu_over_wall": cpu / wall,
        "failed_points": int((~ok).sum()),
        "mean_num_steps": float(ds.num_steps.values.mean()),
        "lane_utilization": lane_utilization(ds.num_steps.values, batch_size),
        "us_per_point_step_cpu": 1e6 * cpu / float(ds.num_steps.values.sum()),
    }


def lane_utilization(steps, batch_size):
    """Steps the points needed over the steps their solver loops ran: the vmapped lanes of a
    loop step together until its slowest point is done (the sweep's groups of one chunk, each
    padded with the chunk's last point, as ``Chunks.plan`` lays them out)."""
    chunks = Chunks.plan(batch_size, len(steps), jax.local_devices())
    lanes = chunks.padded // (len(jax.local_devices()) * chunks.groups)
    padded = np.concatenate([steps, np.repeat(steps[-1], chunks.padded - len(steps))])
    return float(steps.sum() / (padded.reshape(-1, lanes).max(axis=1).sum() * lanes))


def scipy_throughput(rhs, n, t_final):
    runs = [scipy_point(rhs, (t_final / 2, t_final)) for _ in range(n)]
    wall, cpu = sum(r["run_wall_s"] for r in runs), sum(r["run_cpu_s"] for r in runs)
    return runs[0], {"points": n, "wall_s_per_point": wall / n, "cpu_s_per_point": cpu / n,
                     "num_steps": runs[0]["num_steps"]}


# ----------------------------------------------------------------------------- memory


def max_rss_mib():
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def memory_child(n_points, model, config):
    fn = point_function(ARGS.memory_t_final, config)
    start = max_rss_mib()
    ds, wall, _ = timed_sweep(fn, model, n_points, ARGS.memory_batch)
    assert (ds.status.values == "success").all()
    print(json.dumps({"points": n_points, "batch_size": ARGS.memory_batch,
                      "rss_before_mib": start, "peak_rss_mib": max_rss_mib(), "wall_s": wall}))


def memory_scan():
    rows = []
    for chunks in ARGS.memory_chunks:
        n = chunks * ARGS.memory_batch
        cmd = [sys.executable, __file__, "--memory-child", str(n), "--solver", ARGS.solver,
               "--memory-batch", str(ARGS.memory_batch),
               "--memory-t-final", str(ARGS.memory_t_final), "--devices", str(ARGS.devices)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  memory: {n:6d} points -> peak RSS {rows[-1]['peak_rss_mib']:.0f} MiB", flush=True)
    return rows


# ----------------------------------------------------------------------------- main


def main():
    model = qs.optomechanical_pair(**FIG2A)
    solver = getattr(dfx, ARGS.solver)()
    config = qs.SolverConfig(solver=solver, rtol=RTOL, atol=ATOL)
    loop_config = qs.SolverConfig(solver=qs.Unrolled(solver), rtol=RTOL, atol=ATOL, loop="diffrax")
    if ARGS.memory_child is not None:
        return memory_child(ARGS.memory_child, model, config)

    meta = {**metadata(), "intra_op_threads": os.environ.get("NPROC")}
    report = {"benchmark": "sweep", "metadata": meta,
              "t_final": ARGS.t_final,
              "window": [ARGS.t_final / 2, ARGS.t_final], "rtol": RTOL, "atol": ATOL,
              "solver": ARGS.solver, "sweep": [], "baselines": {}, "memory": None, "gpu": None}
    print(f"devices: {report['metadata']['devices']}  load: {os.getloadavg()[0]:.1f}", flush=True)

    # Baselines run before and after the scan; the faster run counts (the other jobs on a
    # shared machine slow both sides).
    rhs = {"scipy_numpy": numpy_rhs()}
    if (numba := numba_rhs()) is not None:
        rhs["scipy_numba"] = numba
    before, reference = {}, {}
    for name, f in rhs.items():
        reference[name], before[name] = scipy_throughput(f, ARGS.scipy_points, ARGS.t_final)
        print(f"  {name} per point: {before[name]['cpu_s_per_point']:.3f} CPU s "
              f"({reference[name]['num_steps']} steps)", flush=True)
    runs = [("lean", config, b) for b in ARGS.batch_sizes]
    runs += [(f"diffrax_loop_unrolled({ARGS.solver})", loop_config, b)
             for b in ARGS.loop_batch_sizes]
    for label, run_config, batch_size in runs:
        ds, row = sweep_throughput(model, run_config, batch_size, ARGS.t_final, label)
        point = ds.isel(point=0)  # the Fig. 2(a) point, as in the baselines
        row["max_rel_diff_vs_scipy"] = check_agreement(
            reference["scipy_numpy"],
            {"S_c": float(point["complete_sync"][0]), "S_p": float(point["phase_sync"][0])})
        report["sweep"].append(row)
        print(f"  {label:16s} B={batch_size:5d}: {row['points_per_s']:8.2f} points/s, compile "
              f"{row['compile_s']:.1f} s, CPU/wall {row['cpu_over_wall']:.2f}, "
              f"{row['us_per_point_step_cpu']:.2f} CPU us/point-step, lanes "
              f"{100 * row['lane_utilization']:.1f} % busy", flush=True)
    for name, f in rhs.items():
        _, after = scipy_throughput(f, ARGS.scipy_points, ARGS.t_final)
        best = min((before[name], after), key=lambda r: r["cpu_s_per_point"])
        report["baselines"][name] = {"before": before[name], "after": after, "best": best}
        for row in report["sweep"]:
            row[f"speedup_per_core_vs_{name}"] = best["cpu_s_per_point"] / row["cpu_s_per_point"]
            row[f"speedup_wall_vs_{name}"] = best["wall_s_per_point"] / row["wall_s_per_point"]
    for row in report["sweep"]:
        print(f"  {row['solver']:16s} B={row['batch_size']:5d}: " + ", ".join(
            f"x{row[f'speedup_per_core_vs_{n}']:.1f} per core / "
            f"x{row[f'speedup_wall_vs_{n}']:.1f} wall vs {n}" for n in rhs), flush=True)

    report["memory"] = memory_scan()
    if jax.default_backend() == "gpu":
        n = ARGS.gpu_points
        fn = point_function(ARGS.t_final, config)
        timed_sweep(point_function(1e-3, config), model, n, None)
        ds, wall, _ = timed_sweep(fn, model, n, None)
        report["gpu"] = {"points": n, "run_s": wall, "points_per_s": n / wall,
                         "failed_points": int((ds.status.values != "success").sum())}
        print(f"  GPU: {n} points in {wall:.1f} s ({n / wall:.0f} points/s)", flush=True)

    write_report("bench_sweep", report, ARGS.output)


if __name__ == "__main__":
    main()
