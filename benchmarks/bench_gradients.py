"""Cost of gradients: value-and-gradient against the value alone, and memory of the adjoint.

1. **Fig. 2(a) point of Mari et al. (2013)** (ω = (1, 1.005), κ = 0.15, γ = 0.005, g = 0.005,
   E = 48, μ = 0.02, n_th = 0; rtol = atol = 1e-8; from the default initial state to
   t_final = ``--t-final``): the design objective S̄_p, the time-averaged phase synchronization of
   the mechanical modes over (t_final/2, t_final), as a function of the two design scalars (μ, E).
   Timed: the value; value and gradient in forward mode (``jax.jacfwd``,
   ``diffrax.ForwardMode``); value and gradient in reverse mode (``jax.value_and_grad``,
   ``diffrax.RecursiveCheckpointAdjoint``, in the lean loop the discrete adjoint of
   ``qsync_jax._lean``, with the default and the ``--checkpoints`` numbers of checkpoints).
   Compile time (first call minus the best warm call) is reported apart from run time (best of
   ``--repeats`` warm calls, timed in turn). The default solver settings (the lean
   loop of ``SolverConfig(loop="auto")``); ``--loop diffrax`` times Diffrax's loop instead.
2. **Memory of the reverse-mode adjoint vs t_final**: one compiled gradient serves every t_final
   (the window is a traced argument), so its memory (XLA's buffer assignment: temporaries plus
   arguments and outputs) cannot grow with t_final; it is set by the number of checkpoints.
   Reported next to what a reverse pass storing every step would need (steps × the state and the
   solver's stages) and the run time for each t_final of ``--memory-t``.
3. **Steady state** (correlated bath, ``qs.steady_state``: Lyapunov solve): Rényi-2 mutual
   information plus discord as a function of (ξ, g), value vs value-and-gradient in both modes,
   per point of a vmapped batch of 1000 points.

Writes ``benchmarks/results/bench_gradients_<host>_<backend>.json``.

Usage: ``python benchmarks/bench_gradients.py [--t-final 2000] [--checkpoints 100,20000]``
"""

import argparse
import os
import time
from pathlib import Path

import diffrax as dfx
import jax
import jax.numpy as jnp
from _baselines import ATOL, FIG2A, RTOL
from _common import metadata, write_report

import qsync_jax as qs

jax.config.update("jax_enable_x64", True)

PARAMS = FIG2A
BATH = dict(omega=(1.0, 1.2), gamma=0.5, n_th=(1.0, 0.0))
STATE_FLOATS = 8 + 64 + 1  # mean, covariance and the running integral of S_p


def phase_sync_mech(t, state):
    return qs.phase_sync(state, 1, 3)


LOOP = "auto"


def pair_objective(adjoint, max_steps=1_000_000):
    config = qs.SolverConfig(rtol=RTOL, atol=ATOL, adjoint=adjoint, max_steps=max_steps,
                             loop=LOOP)

    def objective(p, window):
        model = qs.optomechanical_pair(**{**PARAMS, "mu": p[0], "E": p[1]})
        return qs.time_average(model, phase_sync_mech, window, config=config).value

    return objective


def forward_value_and_grad(f):
    def value_and_grad(p, window):
        grad, value = jax.jacfwd(lambda p: (lambda v: (v, v))(f(p, window)), has_aux=True)(p)
        return value, grad

    return value_and_grad


def compiled(fn, args):
    """jit(fn) compiled for ``args``, with its compile time (lowering + compilation + the first
    call's excess over a warm call) and XLA's memory estimate (temporaries, arguments, outputs)."""
    start = time.perf_counter()
    exe = jax.jit(fn).lower(*args).compile()
    lower_compile = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(exe(*args))
    first = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(exe(*args))
    warm = time.perf_counter() - start
    memory = exe.memory_analysis()
    bytes_ = None
    if memory is not None:
        bytes_ = int(memory.temp_size_in_bytes + memory.argument_size_in_bytes
                     + memory.output_size_in_bytes)
    row = {"compile_s": lower_compile + max(first - warm, 0.0), "memory_bytes": bytes_}
    return exe, out, row


def interleaved(executables, args, repeats):
    """Best warm run time of each executable, timed in turn (robust to a changing load)."""
    runs = {name: [] for name in executables}
    for _ in range(repeats):
        for name, exe in executables.items():
            start = time.perf_counter()
            jax.block_until_ready(exe(*args))
            runs[name].append(time.perf_counter() - start)
    return {name: min(r) for name, r in runs.items()}


def fig2a(t_final, repeats, checkpoints, memory_ts):
    p = jnp.array([PARAMS["mu"], PARAMS["E"]])
    window = jnp.array([t_final / 2, t_final])
    functions = {
        "value": pair_objective(dfx.RecursiveCheckpointAdjoint()),
        "forward": forward_value_and_grad(pair_objective(dfx.ForwardMode())),
    }
    for k in [None, *checkpoints]:
        name = "reverse" if k is None else f"reverse_checkpoints_{k}"
        functions[name] = jax.value_and_grad(
            pair_objective(dfx.RecursiveCheckpointAdjoint(checkpoints=k))
        )
    rows, executables, outputs = {}, {}, {}
    for name, fn in functions.items():
        executables[name], outputs[name], rows[name] = compiled(fn, (p, window))
        print(f"  compiled {name}: {rows[name]}", flush=True)
    for name, run in interleaved(executables, (p, window), repeats).items():
        rows[name]["run_s"] = run
    g_fwd = outputs["forward"][1]
    for name, row in rows.items():
        row["ratio_to_value"] = row["run_s"] / rows["value"]["run_s"]
        if name.startswith("reverse"):
            k = name.removeprefix("reverse").removeprefix("_checkpoints_")
            row["checkpoints"] = int(k) if k else "default (⌈√max_steps⌉)"
            g = outputs[name][1]
            row["max_rel_diff_vs_forward"] = float(jnp.max(jnp.abs(g - g_fwd) / jnp.abs(g_fwd)))
        print(f"  {name}: {row}", flush=True)

    solver = qs.SolverConfig().solver
    stages = solver.tableau.num_stages if hasattr(solver, "tableau") else 1
    memory = []
    for t in memory_ts:
        w = jnp.array([t / 2, t])
        start = time.perf_counter()
        jax.block_until_ready(executables["reverse"](p, w))
        run = time.perf_counter() - start
        n = int(qs.time_average(qs.optomechanical_pair(**PARAMS), phase_sync_mech, (t / 2, t),
                                config=qs.SolverConfig(rtol=RTOL, atol=ATOL)).num_steps)
        memory.append({
            "t_final": t,
            "num_steps": n,
            "reverse_run_s": run,
            "adjoint_memory_bytes": rows["reverse"]["memory_bytes"],
            "store_every_step_bytes": n * STATE_FLOATS * (stages + 1) * 8,
        })
        print(f"  memory: {memory[-1]}", flush=True)
    return {
        "objective": "S_p averaged over (t_final/2, t_final), mechanical modes 1 and 3",
        "solver": type(solver).__name__,
        "design_parameters": ["mu", "E"],
        "S_p": float(outputs["value"]),
        "gradient": [float(x) for x in g_fwd],
        "timings": rows,
        "memory_vs_t_final": memory,
    }


def steady_state_rows(repeats):
    def scalar(p):
        cov = qs.steady_state(qs.CorrelatedBathOscillators(xi=p[0], g=p[1], **BATH)).cov
        return qs.mutual_information(cov, kind="renyi2") + qs.gaussian_discord(cov, kind="renyi2")

    def forward(p):
        grad, value = jax.jacfwd(lambda p: (lambda v: (v, v))(scalar(p)), has_aux=True)(p)
        return value, grad

    points = 1000
    p = jnp.stack([jnp.linspace(-0.5, 0.5, points), jnp.linspace(-1.0, 1.0, points)], axis=1)

    functions = {"value": scalar, "reverse": jax.value_and_grad(scalar), "forward": forward}
    rows, executables = {}, {}
    for name, fn in functions.items():
        executables[name], _, rows[name] = compiled(jax.vmap(fn), (p,))
    for name, run in interleaved(executables, (p,), repeats).items():
        rows[name]["run_s"] = run / points
    for name, row in rows.items():
        row["ratio_to_value"] = row["run_s"] / rows["value"]["run_s"]
        print(f"  steady state {name}: {row}", flush=True)
    return {"objective": "I2 + D2 of the steady state vs (xi, g)",
            "per_point_of_a_vmapped_batch_of": points, "timings": rows}



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--t-final", type=float, default=2000.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoints", default="20000",
                        help="comma-separated extra checkpoint numbers for the reverse mode")
    parser.add_argument("--memory-t", default="250,500,1000,2000")
    parser.add_argument("--loop", default="auto", choices=["auto", "diffrax"])
    parser.add_argument("--skip-steady-state", action="store_true")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    global LOOP
    LOOP = args.loop
    checkpoints = [int(k) for k in args.checkpoints.split(",") if k]
    memory_ts = [float(t) for t in args.memory_t.split(",") if t]

    report = {"benchmark": "gradients", "metadata": metadata(), "params": PARAMS,
              "t_final": args.t_final, "rtol": RTOL, "atol": ATOL, "loop": args.loop}
    print(f"devices: {report['metadata']['devices']}  load: {os.getloadavg()[0]:.1f}", flush=True)
    report["fig2a"] = fig2a(args.t_final, args.repeats, checkpoints, memory_ts)
    if not args.skip_steady_state:
        report["steady_state"] = steady_state_rows(args.repeats)

    write_report("bench_gradients", report, args.output)


if __name__ == "__main__":
    main()
