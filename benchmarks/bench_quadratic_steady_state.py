"""Steady states of a random 4-mode QuadraticLindbladModel: vmapped qsync_jax vs SciPy vs QuTiP,
and the cost of the Lyapunov solve vs the number of modes (Kronecker O(m⁶) vs Bartels–Stewart).

Part 1 (``--n-points`` random drives, same M, K, J): ``qs.steady_state`` of the batch in one
``jit(vmap(...))`` call; ``scipy.linalg.solve_continuous_lyapunov`` + ``numpy.linalg.solve`` in a
Python loop over the same (A, D, b); ``qutip.steadystate`` at cutoff ``--cutoff`` per mode on
``--qutip-points`` points; vectorized NumPy, one batched LU of the Kronecker system
(I⊗A + A⊗I) vec C = −vec D for all points. CPU (per core) and wall time per point side by side,
with the cores each side used (CPU/wall); compile time apart; every result checked equal.
Part 2: one ``solve_lyapunov`` (jit, warm) of a random stable (2n, 2n) problem for n = 2 … 32
with ``method="kronecker"`` (n ≤ 12: its O(m⁴) memory) and ``"schur"``, and SciPy's
``solve_continuous_lyapunov`` (Bartels–Stewart in LAPACK) on the same matrices; best of ≥ 5 calls
and ≥ 0.2 s each; the crossover.
Writes ``benchmarks/results/bench_quadratic_steady_state_<host>_<backend>.json``.

Usage: ``python benchmarks/bench_quadratic_steady_state.py [--n-points 10000] [--cutoff 3]
[--qutip-points 1] [--modes 2,4,6,8,12,16,24,32]``
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import qutip as qt
import scipy.linalg
from _common import metadata, numpy_batched_lyapunov, write_report

import qsync_jax as qs

jax.config.update("jax_enable_x64", True)


def random_model(rng, n):
    X = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    M = 0.3 * (X + X.conj().T) + np.diag(rng.uniform(0.5, 1.5, n))
    Y = 0.02 * (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    loss = 0.6 * (rng.normal(size=(3, n)) + 1j * rng.normal(size=(3, n)))
    gain = 0.04 * (rng.normal(size=(3, n)) + 1j * rng.normal(size=(3, n)))
    return qs.QuadraticLindbladModel(M, pairing=Y + Y.T, jumps=np.concatenate([loss, gain], 1))


def timed(fn, repeats=3, min_total_s=0.0):
    """Best wall and CPU time of ``repeats`` calls (more, until ``min_total_s`` has passed)."""
    best_wall, best_cpu, total, k = np.inf, np.inf, 0.0, 0
    while k < repeats or total < min_total_s:
        wall, cpu = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(fn())
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        total += time.perf_counter() - wall
        k += 1
    return out, best_wall, best_cpu


def part1(args, rng):
    base = random_model(rng, 4)
    drives = jnp.asarray(0.04 * rng.normal(size=(args.n_points, 4)))

    @jax.jit
    def batch(drives):
        models = jax.vmap(lambda f: qs.QuadraticLindbladModel(
            hamiltonian_real=base.hamiltonian_real, hamiltonian_imag=base.hamiltonian_imag,
            pairing_real=base.pairing_real, pairing_imag=base.pairing_imag,
            jumps_real=base.jumps_real, jumps_imag=base.jumps_imag, drive_real=f))(drives)
        return jax.vmap(lambda m: qs.steady_state(m).cov)(models)

    t = time.perf_counter()
    jax.block_until_ready(batch(drives))
    first = time.perf_counter() - t
    covs, wall, cpu = timed(lambda: batch(drives))
    A, D = np.asarray(base.drift_matrix()), np.asarray(base.diffusion_matrix())
    symp = np.asarray(qs.symplectic_form(4))

    def scipy_loop():
        out = []
        for f in np.asarray(drives):
            b = symp @ np.stack([np.sqrt(2) * f, np.zeros(4)], -1).reshape(-1)  # b = Ω·2Re(Tᴴf)
            out.append((scipy.linalg.solve_continuous_lyapunov(A, -D), np.linalg.solve(A, -b)))
        return out

    _, s_wall, s_cpu = timed(scipy_loop, repeats=1)
    ref = scipy.linalg.solve_continuous_lyapunov(A, -D)
    As = np.broadcast_to(A, (args.n_points, *A.shape))
    Ds = np.broadcast_to(D, (args.n_points, *D.shape))
    vec, v_wall, v_cpu = timed(lambda: numpy_batched_lyapunov(As, Ds), repeats=1)
    q_wall, q_cpu, q_err = [], [], []
    for k in range(args.qutip_points):
        f = np.asarray(drives[k])
        model = qs.QuadraticLindbladModel(base.hamiltonian, pairing=base.pairing,
                                          jumps=base.jumps, drive=f)
        N = args.cutoff
        a = [qt.tensor(*[qt.destroy(N) if i == j else qt.qeye(N) for j in range(4)])
             for i in range(4)]
        M, K, J = (np.asarray(x) for x in (model.hamiltonian, model.pairing, model.jumps))
        H = sum(f[i] * (a[i].dag() + a[i]) for i in range(4))
        H += sum(M[i, j] * a[i].dag() * a[j] + 0.5 * (K[i, j] * a[i].dag() * a[j].dag()
                 + np.conj(K[i, j]) * a[j] * a[i]) for i in range(4) for j in range(4))
        c_ops = [sum(J[r, i] * a[i] + J[r, 4 + i] * a[i].dag() for i in range(4))
                 for r in range(J.shape[0])]
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        rho = qt.steadystate(H, c_ops)
        q_wall.append(time.perf_counter() - start_wall)
        q_cpu.append(time.process_time() - start_cpu)
        x0 = (a[0] + a[0].dag()) / np.sqrt(2)
        var = qt.expect(x0 * x0, rho) - qt.expect(x0, rho) ** 2
        q_err.append(abs(var - float(covs[k][0, 0])))
    return {
        "n_points": args.n_points,
        "qsync": {"compile_s": first - wall, "wall_s": wall, "cpu_s": cpu,
                  "cpu_s_per_point": cpu / args.n_points, "cores": cpu / wall},
        "scipy_loop": {"wall_s": s_wall, "cpu_s": s_cpu, "cpu_s_per_point": s_cpu / args.n_points,
                       "cores": s_cpu / s_wall,
                       "max_abs_diff_cov": float(np.max(np.abs(np.asarray(covs[0]) - ref)))},
        "numpy_batched_kronecker": {
            "wall_s": v_wall, "cpu_s": v_cpu, "cpu_s_per_point": v_cpu / args.n_points,
            "cores": v_cpu / v_wall,
            "max_abs_diff_cov": float(np.max(np.abs(np.asarray(covs) - vec)))},
        "qutip": {"cutoff": args.cutoff, "points": args.qutip_points,
                  "cpu_s_per_point": float(np.mean(q_cpu)) if q_cpu else None,
                  "wall_s_per_point": float(np.mean(q_wall)) if q_cpu else None,
                  "max_abs_diff_var_x0": float(np.max(q_err)) if q_cpu else None},
        "speedup_cpu_vs_scipy": s_cpu / cpu,
        "speedup_wall_vs_scipy": s_wall / wall,
        "speedup_cpu_vs_numpy_batched": v_cpu / cpu,
        "speedup_wall_vs_numpy_batched": v_wall / wall,
        "speedup_cpu_vs_best_baseline": min(s_cpu, v_cpu) / cpu,
        "speedup_wall_vs_best_baseline": min(s_wall, v_wall) / wall,
        "speedup_cpu_vs_qutip": float(np.mean(q_cpu)) / (cpu / args.n_points) if q_cpu else None,
    }


def part2(args, rng):
    rows = []
    for n in (int(x) for x in args.modes.split(",")):
        m = 2 * n
        A = rng.normal(size=(m, m)) - (1 + np.sqrt(m)) * np.eye(m)
        B = rng.normal(size=(m, m))
        A, D = jnp.asarray(A), jnp.asarray(B @ B.T)
        row = {"n_modes": n}
        for method in ("kronecker", "schur"):
            if method == "kronecker" and n > args.kronecker_max_modes:
                continue
            fn = jax.jit(lambda A, D, method=method: qs.solve_lyapunov(A, D, method=method))
            t = time.perf_counter()
            jax.block_until_ready(fn(A, D))
            first = time.perf_counter() - t
            _, wall, cpu = timed(lambda: fn(A, D), repeats=5, min_total_s=0.2)
            row[method] = {"wall_s": wall, "cpu_s": cpu, "compile_s": first - wall}
        An, Dn = np.asarray(A), np.asarray(D)
        X, wall, cpu = timed(lambda: scipy.linalg.solve_continuous_lyapunov(An, -Dn),
                             repeats=5, min_total_s=0.2)
        row["scipy"] = {"wall_s": wall, "cpu_s": cpu,
                        "max_abs_diff": float(np.max(np.abs(np.asarray(fn(A, D)) - X)))}
        rows.append(row)
        print(row, flush=True)
    both = [r for r in rows if "kronecker" in r]
    faster = [r["schur"]["cpu_s"] < r["kronecker"]["cpu_s"] for r in both]
    # the smallest n from which Bartels–Stewart stays faster (a single noisy point does not count)
    cross = next((r["n_modes"] for k, r in enumerate(both) if all(faster[k:])), None)
    return {"rows": rows, "crossover_n_modes": cross,
            "schur_faster_than_kronecker": {r["n_modes"]: f for r, f in zip(both, faster)}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-points", type=int, default=10_000)
    parser.add_argument("--cutoff", type=int, default=3)
    parser.add_argument("--qutip-points", type=int, default=1)
    parser.add_argument("--modes", default="2,4,6,8,12,16,24,32")
    parser.add_argument("--kronecker-max-modes", type=int, default=12)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    one = part1(args, rng)
    print(one, flush=True)
    two = part2(args, rng)
    write_report("bench_quadratic_steady_state", {
        "benchmark": "quadratic_steady_state", "per_point": one, "scaling": two,
        "metadata": {**metadata(), "qutip": qt.__version__}})


if __name__ == "__main__":
    main()
