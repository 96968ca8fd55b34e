"""Multi-process sweep throughput: 1 process × 2 devices vs 2 × 1 vs 2 × 2, on one host.

A point: the optomechanical pair of Mari et al. (2013) (E = 48, μ swept), time averages of S_c
and S_p between the mechanical modes over ``--window`` (``qs.SyncMeasures((1, 3))``). Each
configuration is a separate job: ``P`` fresh processes (this script in worker mode, joined with
``jax.distributed.initialize`` on a free local port), each with ``D`` devices — CPU devices by
``qs.use_cpu_devices(D)``, or on a GPU machine the first ``D`` GPUs of each process
(``CUDA_VISIBLE_DEVICES``). Every process runs the same ``qs.sweep`` call; reported per job:

- compile time (a first sweep of one chunk per process, same chunk size; its wall time),
- the timed sweep's wall time (slowest process; it includes the final exchange of results),
  points/s and points/s per device,
- CPU time of all processes / wall time (how many cores were busy).

On a CPU host with fewer cores than P × D the job is oversubscribed: the JSON says so
(``oversubscribed``), and its points/s measure the overhead, not a speed-up.

Usage: ``python benchmarks/bench_sweep_multiprocess.py [--points 64] [--window 50,100]``
"""

import argparse
import functools
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = ((1, 2), (2, 1), (2, 2))  # (processes, devices per process)


def worker(args):
    import jax

    import qsync_jax as qs

    if args.platform == "cpu":
        qs.use_cpu_devices(args.devices)
    jax.config.update("jax_enable_x64", True)
    if args.processes > 1:
        jax.distributed.initialize(f"127.0.0.1:{args.port}", num_processes=args.processes,
                                   process_id=args.process_id)
    import jax.numpy as jnp
    import numpy as np

    pair = qs.optomechanical_pair(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005,
                                  E=48.0, mu=0.02)
    measures = qs.SyncMeasures([(1, 3)])
    config = qs.SolverConfig()
    t_a, t_b = map(float, args.window.split(","))
    fn = jax.tree_util.Partial(
        functools.partial(_average, measures=measures, config=config), jnp.array([t_a, t_b])
    )
    batch = args.batch_per_device * len(jax.local_devices())

    def run(n):
        axes = {"mu": np.linspace(0.0, 0.04, n)}
        start = time.perf_counter()
        ds = qs.sweep(fn, pair, axes, batch_size=batch, progress=False)
        return time.perf_counter() - start, ds

    compile_s, _ = run(batch * jax.process_count())  # one chunk per process: all compile
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall, ds = run(args.points)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(json.dumps({"process": jax.process_index(), "compile_s": compile_s, "wall_s": wall,
                      "cpu_s": cpu, "global_devices": len(jax.devices()),
                      "success": int((ds.status.values == "success").sum())}), flush=True)


def _average(window, model, *, measures, config):
    import qsync_jax as qs

    return qs.time_average(model, measures, window, config=config, throw=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job(processes, devices, args, platform):
    """Run one configuration; the per-process reports."""
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items() if k != "NPROC"}
    procs = []
    for i in range(processes):
        if platform == "gpu":
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i * devices + d) for d in range(devices))
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--worker", "--processes", str(processes),
             "--devices", str(devices), "--process-id", str(i), "--port", port,
             "--points", str(args.points), "--window", args.window, "--platform", platform,
             "--batch-per-device", str(args.batch_per_device)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=3600)
        if p.returncode:
            raise RuntimeError(f"a worker failed:\n{err}")
        reports.append(json.loads([x for x in out.splitlines() if x.startswith("{")][-1]))
    return reports


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--window", default="50,100")
    parser.add_argument("--batch-per-device", type=int, default=8)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("--processes", "--devices", "--process-id", "--port", "--platform"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.processes, args.devices = int(args.processes), int(args.devices)
        args.process_id = int(args.process_id)
        return worker(args)

    sys.path.insert(0, str(Path(__file__).parent))
    import jax
    from _common import metadata, write_report

    platform = jax.default_backend()
    cores = len(os.sched_getaffinity(0))
    gpus = len(jax.devices()) if platform == "gpu" else 0
    rows = []
    for processes, devices in CONFIGS:
        if platform == "gpu" and processes * devices > gpus:
            continue
        reports = job(processes, devices, args, "gpu" if platform == "gpu" else "cpu")
        wall = max(r["wall_s"] for r in reports)
        n_devices = processes * devices
        row = {
            "processes": processes, "devices_per_process": devices,
            "global_devices": reports[0]["global_devices"],
            "oversubscribed": platform != "gpu" and n_devices > cores,
            "compile_s": max(r["compile_s"] for r in reports),
            "wall_s": wall, "points_per_s": args.points / wall,
            "points_per_s_per_device": args.points / wall / n_devices,
            "cpu_over_wall": sum(r["cpu_s"] for r in reports) / wall,
            "success": reports[0]["success"],
        }
        rows.append(row)
        print(json.dumps(row))
    write_report("sweep_multiprocess", {
        "metadata": metadata(), "points": args.points, "window": args.window,
        "batch_per_device": args.batch_per_device, "usable_cores": cores, "results": rows,
        "note": "each configuration is a separate job of fresh processes on this host; "
                "oversubscribed = more devices than usable cores",
    })


if __name__ == "__main__":
    main()
