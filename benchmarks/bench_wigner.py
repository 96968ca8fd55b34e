"""Truncated-Wigner ensembles: ``qs.wigner_ensemble`` against a NumPy Euler–Maruyama loop.

The model: the optomechanical pair of Fig. 2(a) of Mari et al. (2013) (ω = (1, 1.005), κ = 0.15,
γ = 0.005, g = 0.005, E = 48, μ = 0.02, n_th = 0), from vacuum, ``--steps`` steps of
``--dt``, ``--trajectories`` trajectories, the mean and covariance saved at ``--saves`` times.

Side by side, in one process and one JSON file (``benchmarks/results/``):

- qsync_jax: ``qs.wigner_ensemble`` (stochastic Heun, two drift evaluations per step, streamed
  jackknife statistics), with Gaussian and with five-point increments (``increments=``):
  compile time (first call minus a warm call) apart from run time (best of ``--repeats`` warm
  calls), wall and CPU time;
- NumPy: the loops a user would write over a (N, 8) array of trajectories, with
  ``numpy.random.Generator.standard_normal`` increments and the same saves (``mean``/``cov`` of
  the ensemble at each save time): Euler–Maruyama (one drift evaluation per step) and the same
  scheme as qsync_jax, stochastic Heun (two);
- throughput in trajectory·steps per second and ns per trajectory·step, by wall time and per
  core (by CPU time: robust to other processes sharing the cores), and the ratios; every timing
  is the best of ``--repeats`` runs;
- the CPU cost of one Gaussian number in each (``jax.random.normal`` in float32, as
  ``wigner_ensemble`` draws them, and in float64; NumPy's ``standard_normal``): a step draws
  2n = 8 of them per trajectory, the largest share of its cost;
- accuracy-equivalent cost: the noiseless mean field integrated over the same time window by
  Euler and by Heun (NumPy, one trajectory) against SciPy's DOP853 at rtol 1e-12; for each
  scheme the largest step of a grid whose relative error at the end is below ``--tolerance``,
  and the cost per trajectory of reaching it (steps × ns per trajectory·step measured above).
  Euler's error here is large: it shifts the mechanical damping γ by −ω²dt/2 (= −γ at
  dt = 0.01), Heun's by O(ω⁴dt³).

Usage: ``python benchmarks/bench_wigner.py [--trajectories 8192] [--steps 2000] [--dt 0.01]``
"""

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from _common import metadata, write_report
from scipy.integrate import solve_ivp

import qsync_jax as qs

jax.config.update("jax_enable_x64", True)

PARAMS = dict(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02, n_th=0.0)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def jax_run(n, steps, dt, saves, repeats, increments):
    model = qs.optomechanical_pair(**PARAMS)
    ts = dt * (steps // saves) * jnp.arange(1, saves + 1)

    def run():
        ens = qs.wigner_ensemble(model, ts, n, jax.random.key(0), dt=dt, increments=increments)
        return jax.block_until_ready(ens)

    _, first, _ = timed(run)
    runs = [timed(run) for _ in range(repeats)]
    wall, cpu = min(r[1] for r in runs), min(r[2] for r in runs)
    return {"first_call_s": first, "compile_s": first - wall, "wall_s": wall, "cpu_s": cpu}


def numpy_drift(u, p):
    """The Weyl-ordered drift F = f − ∇²f/4 of the pair (qsync_jax._models.optomechanics
    docstring), by hand."""
    out = np.empty_like(u)
    s2 = np.sqrt(2.0)
    for j, other in ((0, 1), (1, 0)):
        xa, pa, xb, pb = (u[:, 4 * j + k] for k in range(4))
        big = p["omega"][j] + s2 * p["g"] * xb
        out[:, 4 * j] = -p["kappa"] * xa - big * pa + s2 * p["E"]
        out[:, 4 * j + 1] = -p["kappa"] * pa + big * xa
        out[:, 4 * j + 2] = -p["gamma"] * xb + p["omega"][j] * pb - p["mu"] * u[:, 4 * other + 3]
        out[:, 4 * j + 3] = (-p["gamma"] * pb - p["omega"][j] * xb + p["mu"] * u[:, 4 * other + 2]
                             + p["g"] * (xa**2 + pa**2 - 1.0) / s2)
    return out


def numpy_run(n, steps, dt, saves, heun):
    p = dict(PARAMS)
    rng = np.random.default_rng(0)
    sigma = np.sqrt(dt * np.array([p["kappa"], p["kappa"], p["gamma"], p["gamma"]] * 2))
    u = np.sqrt(0.5) * rng.standard_normal((n, 8))
    means, covs = [], []
    every = steps // saves
    for s in range(1, steps + 1):
        noise = sigma * rng.standard_normal((n, 8))
        f0 = numpy_drift(u, p)
        if heun:
            f0 = 0.5 * (f0 + numpy_drift(u + f0 * dt + noise, p))
        u = u + f0 * dt + noise
        if s % every == 0:
            means.append(u.mean(0))
            covs.append(np.cov(u.T))
    return np.array(means), np.array(covs)


def numpy_times(n, steps, dt, saves, heun, repeats):
    runs = [timed(lambda: numpy_run(n, steps, dt, saves, heun)) for _ in range(repeats)]
    return {"wall_s": min(r[1] for r in runs), "cpu_s": min(r[2] for r in runs)}


def rng_costs(count=2_000_000):
    """CPU ns per Gaussian number: ``jax.random.normal`` (float32 as in ``wigner_ensemble``, and
    float64) against NumPy's ``standard_normal``; the noise is the largest share of a step."""
    out = {}
    for dtype in (jnp.float32, jnp.float64):
        normal = jax.jit(lambda k, dtype=dtype: jax.random.normal(k, (count,), dtype))
        jax.block_until_ready(normal(jax.random.key(0)))
        _, _, cpu = timed(lambda: jax.block_until_ready(normal(jax.random.key(1))))
        out[f"jax_{jnp.dtype(dtype).name}_ns"] = 1e9 * cpu / count
    rng = np.random.default_rng(0)
    _, _, np_cpu = timed(lambda: rng.standard_normal(count))
    return out | {"numpy_ns": 1e9 * np_cpu / count}


def accuracy_equivalent(t_end, tolerance):
    """Largest step of a grid (dividing ``t_end``) at which Euler and Heun integrate the noiseless
    mean field from vacuum to ``t_end`` within ``tolerance`` (max error / max |u|) of DOP853."""
    u0 = np.zeros((1, 8))
    ref = solve_ivp(lambda t, u: numpy_drift(u[None], PARAMS)[0], (0.0, t_end), u0[0],
                    method="DOP853", rtol=1e-12, atol=1e-9).y[:, -1]

    @np.errstate(all="ignore")  # a too-large Euler step diverges: an error of NaN, rejected
    def error(dt, heun):
        u = u0.copy()
        for _ in range(round(t_end / dt)):
            f = numpy_drift(u, PARAMS)
            if heun:
                f = 0.5 * (f + numpy_drift(u + f * dt, PARAMS))
            u = u + f * dt
        return float(np.max(np.abs(u[0] - ref)) / np.max(np.abs(ref)))

    out = {}
    for name, heun in (("euler", False), ("heun", True)):
        for k in range(18):
            dt = t_end / (20 * 2**k) if k else t_end / 20
            err = error(dt, heun)
            if err < tolerance:
                out[name] = {"dt": dt, "steps": round(t_end / dt), "relative_error": err}
                break
        else:
            out[name] = None
    return out


def numpy_keys(runs):
    return [k for k in runs if k.startswith("numpy")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--dt", type=float, default=0.01)
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    n, steps = args.trajectories, args.steps
    work = n * steps

    jax_times = {f"jax_{inc}": jax_run(n, steps, args.dt, args.saves, args.repeats, inc)
                 for inc in ("gaussian", "five_point")}
    numpy = {scheme: numpy_times(n, steps, args.dt, args.saves, scheme == "heun", args.repeats)
             for scheme in ("euler_maruyama", "heun")}
    rng = rng_costs()
    accuracy = accuracy_equivalent(steps * args.dt, args.tolerance)
    runs = jax_times | {f"numpy_{k}": v for k, v in numpy.items()}
    rates = {f"{k}_{how}": work / v[f"{time}_s"] for k, v in runs.items()
             for how, time in (("wall", "wall"), ("per_core", "cpu"))}
    ns = {k: 1e9 / v for k, v in rates.items()}
    speedup = {f"{j}_vs_{k}_{how}": rates[f"{j}_{how}"] / rates[f"{k}_{how}"]
               for j in jax_times for k in numpy_keys(runs) for how in ("wall", "per_core")}
    if accuracy["euler"] and accuracy["heun"]:
        for j in jax_times:
            for how in ("wall", "per_core"):
                cost_em = accuracy["euler"]["steps"] * ns[f"numpy_euler_maruyama_{how}"]
                cost_jax = accuracy["heun"]["steps"] * ns[f"{j}_{how}"]
                speedup[f"{j}_accuracy_equivalent_vs_numpy_euler_maruyama_{how}"] = (
                    cost_em / cost_jax)
    report = {
        "benchmark": "bench_wigner",
        "metadata": metadata(),
        "parameters": {**PARAMS, "trajectories": n, "steps": steps, "dt": args.dt,
                       "saves": args.saves, "repeats": args.repeats,
                       "tolerance": args.tolerance,
                       "jax_devices": len(jax.devices())},
        "jax": jax_times,
        "numpy": numpy,
        "trajectory_steps_per_s": rates,
        "ns_per_trajectory_step": ns,
        "cpu_ns_per_gaussian_number": rng,
        "accuracy_equivalent": {"tolerance": args.tolerance, "t_end": steps * args.dt,
                                **accuracy},
        "speedup": speedup,
        "note": "qsync_jax: stochastic Heun (2 drift evaluations per step), increments from "
                "float32 standard normals (jax_gaussian) or five-point numbers (jax_five_point, "
                "weak order 2 alike); NumPy: Euler–Maruyama (1 per step) and stochastic Heun "
                "(2), same dt. accuracy_equivalent: steps each scheme needs for the noiseless "
                "mean field within the tolerance. The 2-core machine was shared with other jobs.",
    }
    for k, v in ns.items():
        print(f"{k:>28}: {v:7.1f} ns per trajectory·step")
    print(f"Gaussian numbers: JAX float32 {rng['jax_float32_ns']:.1f} ns, float64 "
          f"{rng['jax_float64_ns']:.1f} ns, NumPy {rng['numpy_ns']:.1f} ns")
    print(f"accuracy-equivalent steps: {accuracy}")
    for k, v in speedup.items():
        print(f"speed-up {k}: {v:.2f}×")
    for j, v in jax_times.items():
        print(f"{j}: compile {v['compile_s']:.1f} s")
    write_report("bench_wigner", report, None if args.output is None else Path(args.output))


if __name__ == "__main__":
    main()
