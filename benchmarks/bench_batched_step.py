"""Costs behind the batched integrator: the 8 × 8 product and Runge–Kutta steps, alone and vmapped.

1. A·C for 8 × 8 matrices (the covariance equation of an optomechanical pair), ns per product,
   evaluated 20 000 times in a ``fori_loop``: the broadcast form, a dot product (``A @ C``) and
   the library's ``_small_matmul`` (broadcast alone, batched dot under ``vmap``), for one matrix
   and for 256 at once.
2. Fig. 2(a)-pair time averages (t = 200, rtol = atol = 1e-8) with Diffrax's ``Dopri8`` and with
   ``qs.Unrolled()``, µs per step for one trajectory and per trajectory-step for 256 under vmap,
   on one device.

Usage: ``python benchmarks/bench_batched_step.py``
"""

import time

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _common import metadata, write_report
from bench_fig2a_point import PARAMS

import qsync_jax as qs
from qsync_jax._integrate import _broadcast_matmul, _small_matmul

jax.config.update("jax_enable_x64", True)
LOOP = 20_000
BATCH = 256


def best_of(f, *args, repeats=3):
    jax.block_until_ready(f(*args))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def product_costs():
    rng = np.random.default_rng(0)
    A = jnp.asarray(rng.normal(size=(8, 8)) * 1e-3)
    C0 = jnp.asarray(rng.normal(size=(BATCH, 8, 8)))
    rows = {}
    for name, mm in (("broadcast", _broadcast_matmul), ("dot", jnp.matmul),
                     ("small_matmul", _small_matmul)):
        def loop(C, mm=mm):
            return jax.lax.fori_loop(0, LOOP, lambda i, C: C + mm(A, C) * 1e-3, C)
        single = best_of(jax.jit(loop), C0[0])
        batched = best_of(jax.jit(jax.vmap(loop)), C0)
        rows[name] = {"ns_single": 1e9 * single / LOOP, f"ns_per_matrix_vmap_{BATCH}":
                      1e9 * batched / LOOP / BATCH}
        print(f"  A·C {name:12s}: {rows[name]['ns_single']:6.0f} ns alone, "
              f"{rows[name][f'ns_per_matrix_vmap_{BATCH}']:6.0f} ns per matrix in a batch",
              flush=True)
    return rows


def step_costs():
    model = qs.optomechanical_pair(**PARAMS)
    drives = jnp.linspace(44.0, 52.0, BATCH)
    rows = {}
    for name, solver in (("Dopri8", dfx.Dopri8()), ("Unrolled(Dopri8)", qs.Unrolled())):
        config = qs.SolverConfig(solver=solver)

        def point(E, config=config):
            m = eqx.tree_at(lambda m: m.E, model, jnp.broadcast_to(E, (2,)))
            r = qs.time_average(m, qs.SyncMeasures((1, 3)), (100.0, 200.0), config=config,
                                throw=False)
            return r.num_steps

        single_steps = int(jax.jit(point)(drives[0]))
        single = best_of(jax.jit(point), drives[0])
        batched_steps = int(jnp.sum(jax.jit(jax.vmap(point))(drives)))
        batched = best_of(jax.jit(jax.vmap(point)), drives, repeats=1)
        rows[name] = {"us_per_step_single": 1e6 * single / single_steps,
                      f"us_per_trajectory_step_vmap_{BATCH}": 1e6 * batched / batched_steps}
        print(f"  {name:16s}: {rows[name]['us_per_step_single']:5.1f} µs per step alone, "
              f"{rows[name][f'us_per_trajectory_step_vmap_{BATCH}']:5.2f} µs per trajectory-step "
              f"in a batch of {BATCH}", flush=True)
    return rows


def main():
    report = {"benchmark": "batched_step", "metadata": metadata(), "loop": LOOP, "batch": BATCH}
    print("8 × 8 products:", flush=True)
    report["products"] = product_costs()
    print("Runge–Kutta steps (Fig. 2(a) pair, t = 200):", flush=True)
    report["steps"] = step_costs()
    write_report("bench_batched_step", report)


if __name__ == "__main__":
    main()
