"""Steady states of the correlated-bath oscillators for 10⁴ values of ξ: vs SciPy, NumPy, QuTiP.

Physics (Bittner & Tyagi 2025, eqs. (1)–(12)): ω = (1, 1.1), g = 0.1, γ = 0.2,
n̄ = (0.05, 0.1), ξ on ``--n-xi`` points of [−0.95, 0.95] (all stable).

- qsync_jax: ``qs.steady_state`` of a batch of models, one ``jit(vmap(...))`` call over all ξ
  (a Lyapunov solve per point). Compile time (first call minus the best warm call) is reported
  apart from the run time (best of ``--repeats`` warm calls, ``block_until_ready``).
- the baselines a user would write for the same Lyapunov equation A C + C Aᵀ + D = 0, given the
  matrices A(ξ), D(ξ) (assembled before the clock starts, from the model's ``drift_matrix`` and
  ``diffusion_matrix``): SciPy's ``solve_continuous_lyapunov`` in a loop over ξ, and vectorized
  NumPy (one batched LU of the Kronecker system for all ξ); checked equal to qsync_jax; wall and
  CPU (per core) time with the cores each side used (CPU/wall).
- QuTiP (an independent check in Fock space, not a speed baseline): ``qutip.steadystate`` with
  the Lindblad operators of eqs. (11)–(12) in a truncated Fock basis (N levels per oscillator),
  on ``--qutip-points`` of the same ξ values, for each cutoff in ``--cutoffs``; its covariance
  from operator expectation values. Times per point are averaged over the points and
  extrapolated to all ξ.

Reported: max |C_qsync − C_QuTiP| at each cutoff (convergence in N), QuTiP's own change between
its two largest cutoffs (its truncation error), and the speed-up per point (QuTiP wall /
qsync_jax wall per point, and the same in CPU time) at the largest cutoff and at the smallest
cutoff whose agreement is ≤ ``--target`` at every point. Writes
``benchmarks/results/bench_correlated_bath_steady_state_<host>_<backend>.json``.

Usage: ``python benchmarks/bench_correlated_bath_steady_state.py [--n-xi 10000]
[--qutip-points 5] [--cutoffs 8,10,12,14] [--repeats 5]``
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import qutip as qt
import scipy.linalg
from _common import best_of, metadata, numpy_batched_lyapunov, write_report

import qsync_jax as qs

jax.config.update("jax_enable_x64", True)

PARAMS = dict(omega=(1.0, 1.1), g=0.1, gamma=0.2, n_th=(0.05, 0.1))
XI_RANGE = (-0.95, 0.95)


def build(xi):
    return qs.CorrelatedBathOscillators(xi=xi, **PARAMS)


@jax.jit
def steady_covariances(xis):
    return jax.vmap(lambda xi: qs.steady_state(build(xi)).cov)(xis)


def time_qsync(xis, repeats):
    first = time.perf_counter()
    covs = jax.block_until_ready(steady_covariances(xis))
    first = time.perf_counter() - first
    covs, wall, cpu = best_of(lambda: jax.block_until_ready(steady_covariances(xis)), repeats)
    return np.asarray(covs), first - wall, wall, cpu


def lyapunov_baselines(xis, covs, repeats):
    """SciPy loop and vectorized NumPy on the same A(ξ), D(ξ); best of ``repeats``."""
    models = jax.vmap(build)(jnp.asarray(xis))
    A = np.asarray(jax.vmap(lambda m: m.drift_matrix())(models))
    D = np.asarray(jax.vmap(lambda m: m.diffusion_matrix())(models))
    runs = {
        "scipy_loop": lambda: np.stack(
            [scipy.linalg.solve_continuous_lyapunov(a, -d) for a, d in zip(A, D)]),
        "numpy_batched_kronecker": lambda: numpy_batched_lyapunov(A, D),
    }
    out = {}
    for name, run in runs.items():
        C, wall, cpu = best_of(run, repeats)
        out[name] = {"wall_s": wall, "cpu_s": cpu, "cores": cpu / wall,
                     "max_abs_diff_cov": float(np.max(np.abs(C - covs)))}
        assert out[name]["max_abs_diff_cov"] < 1e-9, (name, out[name])
    return out


def fock_problem(xi, N):
    (w1, w2), g, gamma, (n1, n2) = PARAMS["omega"], PARAMS["g"], PARAMS["gamma"], PARAMS["n_th"]
    a1 = qt.tensor(qt.destroy(N), qt.qeye(N))
    a2 = qt.tensor(qt.qeye(N), qt.destroy(N))
    H = w1 * a1.dag() * a1 + w2 * a2.dag() * a2 + g * (a1.dag() * a2 + a2.dag() * a1)
    L = (np.sqrt(gamma * (n1 + 1)) * a1, np.sqrt(gamma * (n2 + 1)) * a2)
    L_prime = (np.sqrt(gamma * n1) * a1.dag(), np.sqrt(gamma * n2) * a2.dag())
    c_ops = []
    for sign in (1, -1):
        weight = np.sqrt((1 + sign * xi) / 2)
        c_ops += [weight * (L[0] + sign * L[1]), weight * (L_prime[0] + sign * L_prime[1])]
    quadratures = [(a1 + a1.dag()) / np.sqrt(2), (a1 - a1.dag()) / (1j * np.sqrt(2)),
                   (a2 + a2.dag()) / np.sqrt(2), (a2 - a2.dag()) / (1j * np.sqrt(2))]
    return H, c_ops, quadratures


def qutip_point(xi, N):
    H, c_ops, u = fock_problem(xi, N)
    wall, cpu = time.perf_counter(), time.process_time()
    rho = qt.steadystate(H, c_ops)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    mean = np.array([qt.expect(o, rho).real for o in u])
    second = np.array([[qt.expect(0.5 * (u[i] * u[j] + u[j] * u[i]), rho).real for j in range(4)]
                       for i in range(4)])
    return second - np.outer(mean, mean), wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-xi", type=int, default=10_000)
    parser.add_argument("--qutip-points", type=int, default=5)
    parser.add_argument("--cutoffs", default="8,10,12,14")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target", type=float, default=1e-8)
    args = parser.parse_args()
    cutoffs = sorted(int(n) for n in args.cutoffs.split(","))

    xis = np.linspace(*XI_RANGE, args.n_xi)
    status = jax.vmap(lambda x: qs.solve_steady_state(build(x), throw=False).status)(xis)
    n_success = int(np.sum(np.asarray(status == qs.Status.success)))
    covs, compile_s, run_wall, run_cpu = time_qsync(jnp.asarray(xis), args.repeats)
    print(f"qsync_jax: {args.n_xi} points in {run_wall * 1e3:.2f} ms "
          f"({run_wall / args.n_xi * 1e6:.3f} µs/point), compile {compile_s:.2f} s")

    baselines = lyapunov_baselines(xis, covs, min(args.repeats, 3))
    best = min(baselines, key=lambda k: baselines[k]["cpu_s"])
    vs_baseline = {
        "best": best,
        "speedup_cpu": baselines[best]["cpu_s"] / run_cpu,
        "speedup_wall": min(b["wall_s"] for b in baselines.values()) / run_wall,
        "qsync_cores": run_cpu / run_wall,
        "baseline_cores": baselines[best]["cores"],
    }
    for name, b in baselines.items():
        print(f"{name}: {b['wall_s'] * 1e3:.1f} ms wall, {b['cpu_s'] * 1e3:.1f} ms CPU, "
              f"|ΔC| {b['max_abs_diff_cov']:.1e}")
    print(f"vs {best}: {vs_baseline['speedup_cpu']:.1f}× CPU, "
          f"{vs_baseline['speedup_wall']:.1f}× wall")

    picks = np.linspace(0, args.n_xi - 1, args.qutip_points).round().astype(int)
    points = []
    for k in picks:
        row = {"xi": float(xis[k]), "cutoffs": {}}
        qutip_covs = {}
        for N in cutoffs:
            cov, wall, cpu = qutip_point(xis[k], N)
            qutip_covs[N] = cov
            row["cutoffs"][N] = {"wall_s": wall, "cpu_s": cpu,
                                 "max_abs_diff": float(np.max(np.abs(cov - covs[k])))}
        row["qutip_truncation"] = float(np.max(np.abs(qutip_covs[cutoffs[-1]] -
                                                      qutip_covs[cutoffs[-2]])))
        points.append(row)
        print(f"ξ = {xis[k]:+.4f}: " + ", ".join(
            f"N={N}: |ΔC| {r['max_abs_diff']:.2e} ({r['wall_s']:.2f} s)"
            for N, r in row["cutoffs"].items()))

    per_point_wall, per_point_cpu = run_wall / args.n_xi, run_cpu / args.n_xi

    def at_cutoff(N):
        wall = float(np.mean([p["cutoffs"][N]["wall_s"] for p in points]))
        cpu = float(np.mean([p["cutoffs"][N]["cpu_s"] for p in points]))
        return {
            "cutoff": N,
            "qutip_s_per_point_wall": wall,
            "qutip_s_per_point_cpu": cpu,
            "qutip_extrapolated_total_s": wall * args.n_xi,
            "speedup_wall": wall / per_point_wall,
            "speedup_cpu": cpu / per_point_cpu,
            "max_abs_diff": max(p["cutoffs"][N]["max_abs_diff"] for p in points),
        }

    on_target = [N for N in cutoffs if at_cutoff(N)["max_abs_diff"] <= args.target]
    summary = {
        "qsync_s_per_point_wall": per_point_wall,
        "qsync_s_per_point_cpu": per_point_cpu,
        "largest_cutoff": at_cutoff(cutoffs[-1]),
        "smallest_cutoff_on_target": at_cutoff(on_target[0]) if on_target else None,
        "target": args.target,
        "max_qutip_truncation": max(p["qutip_truncation"] for p in points),
    }
    for name in ("largest_cutoff", "smallest_cutoff_on_target"):
        if summary[name] is not None:
            r = summary[name]
            print(f"{name} N = {r['cutoff']}: speed-up per point {r['speedup_wall']:.3g} (wall), "
                  f"{r['speedup_cpu']:.3g} (CPU); agreement {r['max_abs_diff']:.2e}")

    out = {
        "benchmark": "correlated_bath_steady_state",
        "params": {**PARAMS, "xi_range": XI_RANGE, "n_xi": args.n_xi},
        "qsync": {"n_success": n_success, "compile_s": compile_s, "run_wall_s": run_wall,
                  "run_cpu_s": run_cpu, "repeats": args.repeats, "cores": run_cpu / run_wall},
        "baselines": baselines,
        "vs_baseline": vs_baseline,
        "qutip_points": points,
        "summary": summary,
        "metadata": {**metadata(), "qutip": qt.__version__, "numpy": np.__version__},
    }
    write_report("bench_correlated_bath_steady_state", out)


if __name__ == "__main__":
    main()
