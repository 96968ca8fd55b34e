"""Cost of one Runge–Kutta step: µs and XLA operations per step, alone and in batches.

1. A·C for 8 × 8 matrices (the covariance equation of an optomechanical pair), ns per product,
   evaluated 20 000 times in a ``fori_loop``: the broadcast form, a dot product (``A @ C``) and
   the library's ``_small_matmul`` (broadcast alone, batched dot under ``vmap``), for one matrix
   and for 256 at once.
2. Fig. 2(a)-pair time averages (window (t/2, t), t = ``--t-final``, rtol = atol = 1e-8,
   Dopri8) with the lean loop (``SolverConfig(loop="auto")``, the default), with Diffrax's loop
   (``loop="diffrax"``) and with Diffrax's loop over unrolled stages (``qs.Unrolled()``): CPU µs
   per trajectory-step for one trajectory and for batches (``vmap``) of ``--batch-sizes``, and the
   XLA operations one step executes (instructions of the compiled loop body other than
   parameters, constants, tuples, bitcasts and copies; a fusion counts once; a nested loop counts
   its body times its trip count, Diffrax's stage loop 13 times for Dopri8), read from the
   compiled HLO of the window's loop. One trajectory runs without ``vmap``.

Usage: ``python benchmarks/bench_batched_step.py [--t-final 200] [--batch-sizes 1,16,256]``
"""

import argparse
import collections
import re
import time

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _baselines import FIG2A
from _common import metadata, write_report

import qsync_jax as qs
from qsync_jax._matmul import _broadcast_matmul, _small_matmul

jax.config.update("jax_enable_x64", True)
LOOP = 20_000
BATCH = 256
_FREE = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "copy"}


def best_cpu(f, *args, repeats=3):
    jax.block_until_ready(f(*args))  # compile
    times = []
    for _ in range(repeats):
        start = time.process_time()
        jax.block_until_ready(f(*args))
        times.append(time.process_time() - start)
    return min(times)


def ops_per_step(hlo: str, unknown_trips: int) -> dict:
    """Operations per iteration of the largest top-level ``while`` loop of compiled HLO text
    (a nested loop without a known trip count runs ``unknown_trips`` times)."""
    computations, current = {}, None
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if header:
            current = computations.setdefault(header.group(1), [])
        elif line.startswith("}"):
            current = None
        elif current is not None and " = " in line:
            current.append(line.strip())

    def count(name):
        ops = collections.Counter()
        for instruction in computations.get(name, []):
            op = re.search(r"= (?:\([^=]*\)|\S+) ([a-z\-]+)\(", instruction)
            if op is None or op.group(1) in _FREE:
                continue
            ops[op.group(1)] += 1
            if op.group(1) == "while":
                trips = re.search(r'"known_trip_count":\{"n":"(\d+)"', instruction)
                trips = int(trips.group(1)) if trips else unknown_trips
                for part in ("body", "condition"):
                    nested = re.search(part + r"=%?([\w.\-]+)", instruction).group(1)
                    for key, value in count(nested).items():
                        ops[key] += trips * value
        return ops

    nested = set()
    for instructions in computations.values():
        for instruction in instructions:
            if " while(" in instruction:
                body = re.search(r"body=%?([\w.\-]+)", instruction).group(1)
                nested |= {i for i in computations.get(body, []) if " while(" in i}
    loops = [i for ins in computations.values() for i in ins
             if " while(" in i and i not in nested]
    best = collections.Counter()
    for instruction in loops:
        body = re.search(r"body=%?([\w.\-]+)", instruction).group(1)
        ops = count(body)
        if sum(ops.values()) > sum(best.values()):
            best = ops
    return {"total": sum(best.values()), **dict(best)}


def product_costs():
    rng = np.random.default_rng(0)
    A = jnp.asarray(rng.normal(size=(8, 8)) * 1e-3)
    C0 = jnp.asarray(rng.normal(size=(BATCH, 8, 8)))
    rows = {}
    for name, mm in (("broadcast", _broadcast_matmul), ("dot", jnp.matmul),
                     ("small_matmul", _small_matmul)):
        def loop(C, mm=mm):
            return jax.lax.fori_loop(0, LOOP, lambda i, C: C + mm(A, C) * 1e-3, C)
        single = best_cpu(jax.jit(loop), C0[0])
        batched = best_cpu(jax.jit(jax.vmap(loop)), C0)
        rows[name] = {"ns_single": 1e9 * single / LOOP,
                      f"ns_per_matrix_vmap_{BATCH}": 1e9 * batched / LOOP / BATCH}
        print(f"  A·C {name:12s}: {rows[name]['ns_single']:6.0f} ns alone, "
              f"{rows[name][f'ns_per_matrix_vmap_{BATCH}']:6.0f} ns per matrix in a batch",
              flush=True)
    return rows


def step_costs(t_final, batch_sizes):
    model = qs.optomechanical_pair(**FIG2A)
    window = (t_final / 2, t_final)
    variants = {
        "lean": qs.SolverConfig(),
        "diffrax_loop": qs.SolverConfig(loop="diffrax"),
        "diffrax_loop_unrolled": qs.SolverConfig(solver=qs.Unrolled(), loop="diffrax"),
    }
    rows = []
    for name, config in variants.items():
        def point(E, config=config):
            m = eqx.tree_at(lambda m: m.E, model, jnp.broadcast_to(E, (2,)))
            r = qs.time_average(m, qs.SyncMeasures((1, 3)), window, config=config, throw=False)
            return r.num_steps

        hlo = jax.jit(point).lower(jnp.asarray(48.0)).compile().as_text()
        ops = ops_per_step(hlo, unknown_trips=dfx.Dopri8.tableau.num_stages - 1)
        for batch in batch_sizes:
            drives = jnp.linspace(44.0, 52.0, batch) if batch > 1 else jnp.asarray(48.0)
            f = jax.jit(jax.vmap(point) if batch > 1 else point)
            steps = int(jnp.sum(f(drives)))
            cpu = best_cpu(f, drives, repeats=3 if batch < 64 else 1)
            rows.append({"variant": name, "batch_size": batch, "total_steps": steps,
                         "us_per_trajectory_step_cpu": 1e6 * cpu / steps,
                         "xla_ops_per_step": ops})
            print(f"  {name:22s} B={batch:4d}: {rows[-1]['us_per_trajectory_step_cpu']:6.2f} CPU "
                  f"µs per trajectory-step, {ops['total']} XLA ops per step", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--t-final", type=float, default=200.0)
    parser.add_argument("--batch-sizes", default="1,16,256")
    parser.add_argument("--skip-products", action="store_true")
    args = parser.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    report = {"benchmark": "batched_step", "metadata": metadata(), "loop": LOOP, "batch": BATCH,
              "t_final": args.t_final}
    if not args.skip_products:
        print("8 × 8 products:", flush=True)
        report["products"] = product_costs()
    print(f"Runge–Kutta steps (Fig. 2(a) pair, window ({args.t_final / 2}, {args.t_final})):",
          flush=True)
    report["steps"] = step_costs(args.t_final, batch_sizes)
    write_report("bench_batched_step", report)


if __name__ == "__main__":
    main()
