"""One Fig. 2(a) point of Mari et al. (2013): qsync_jax against SciPy, and Diffrax solvers compared.

A point: the optomechanical pair of Fig. 2(a) (ω = (1, 1.005), κ = 0.15, γ = 0.005, g = 0.005,
μ = 0.02, n_th = 0, E = 48 — see docs/physics-notes.md for the unit of E), integrated from the
default initial state (zero mean, vacuum) to t = ``--t-final`` (2000 by default, in units of
1/ω₁) at rtol = atol = 1e-8, returning the time averages S̄_c, S̄_p between the mechanical modes
over (t_final/2, t_final).

Side by side, in one run and one JSON file (``benchmarks/results/``):

- qsync_jax (``qs.time_average`` with ``qs.SyncMeasures``) for each solver in ``--solvers``:
  compile time (first call minus a warm call) apart from run time (best of ``--repeats`` warm
  calls, wall and CPU), accepted + rejected steps;
- a plain SciPy implementation of the same equations (``solve_ivp``, DOP853, same tolerances,
  same window, the two integrals carried as extra ODE states): wall and CPU time, evaluations;
- speed-up (SciPy wall / qsync_jax warm wall, and the same in CPU time, which is robust to other
  processes sharing the cores) and the relative difference of the averages.

Usage: ``python benchmarks/bench_fig2a_point.py [--t-final 2000] [--solvers Tsit5,Dopri5,Dopri8]``
"""

import argparse
import os
import time
from pathlib import Path

import diffrax as dfx
import jax
import numpy as np
from _common import metadata, write_report
from scipy.integrate import solve_ivp

import qsync_jax as qs

jax.config.update("jax_enable_x64", True)

PARAMS = dict(qs.MARI2013_FIG2)  # Fig. 2: E = 48 is the caption's E/κ = 320
RTOL = ATOL = 1e-8


# ----------------------------------------------------------------------------- qsync_jax


def jax_point(solver_name, window, repeats):
    model = qs.optomechanical_pair(**PARAMS)
    config = qs.SolverConfig(solver=getattr(dfx, solver_name)(), rtol=RTOL, atol=ATOL)
    measures = qs.SyncMeasures((1, 3))

    def run():
        return jax.block_until_ready(qs.time_average(model, measures, window, config=config))

    first = time.perf_counter()
    result = run()
    first = time.perf_counter() - first
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "solver": solver_name,
        "S_c": float(result.value["complete_sync"][0]),
        "S_p": float(result.value["phase_sync"][0]),
        "status": str(qs.status_names(result.status)),
        "num_steps": int(result.num_steps),
        "compile_s": first - min(walls),
        "run_wall_s": min(walls),
        "run_cpu_s": min(cpus),
    }


# ----------------------------------------------------------------------------- SciPy


def scipy_point(window):
    """DOP853 on mean (8), covariance (64) and the two integrals ∫S_c, ∫S_p over the window.

    The equations of ``qs.OptomechanicalNetwork`` (xpxp, site-major) written in NumPy:
    mean field f from eq. (9) of Mari et al., drift A = ∂f/∂u, dC/dt = AC + CAᵀ + D.
    """
    omega = np.asarray(PARAMS["omega"])
    kappa, gamma, g, E, mu = (PARAMS[k] for k in ("kappa", "gamma", "g", "E", "mu"))
    s2 = np.sqrt(2.0)
    mech = gamma * (2 * PARAMS["n_th"] + 1)
    D = np.diag([kappa, kappa, mech, mech] * 2)
    mu_matrix = np.array([[0.0, mu], [mu, 0.0]])
    A = np.zeros((8, 8))
    A[2, 7] = A[6, 3] = -mu
    A[3, 6] = A[7, 2] = mu

    def rhs(t, y):
        u, C = y[:8].reshape(2, 4), y[8:72].reshape(8, 8)
        xa, pa, xb, pb = u.T
        big = omega + s2 * g * xb
        f = np.stack([-kappa * xa - big * pa + s2 * E, -kappa * pa + big * xa,
                      -gamma * xb + omega * pb - mu_matrix @ pb,
                      -gamma * pb - omega * xb + mu_matrix @ xb + g * (xa**2 + pa**2) / s2], 1)
        for s in (0, 1):
            A[4 * s:4 * s + 4, 4 * s:4 * s + 4] = (
                (-kappa, -big[s], -s2 * g * pa[s], 0.0), (big[s], -kappa, s2 * g * xa[s], 0.0),
                (0.0, 0.0, -gamma, omega[s]), (s2 * g * xa[s], s2 * g * pa[s], -omega[s], -gamma))
        AC = A @ C
        out = [f.ravel(), (AC + AC.T + D).ravel()]
        if y.size > 72:  # inside the window: S_c and S_p of mechanical modes 1 and 3
            var_c = 0.5 * (C[2, 2] + C[6, 6] - 2 * C[2, 6] + C[3, 3] + C[7, 7] - 2 * C[3, 7])
            v = np.stack([-pb, xb], 1) / np.hypot(xb, pb)[:, None]  # phase directions
            blocks = C[np.ix_([2, 3, 6, 7], [2, 3, 6, 7])]
            w = np.concatenate([v[0], -v[1]])
            out.append([1.0 / var_c, 1.0 / (w @ blocks @ w)])
        return np.concatenate(out)

    y0 = np.concatenate([np.zeros(8), np.diag([0.5] * 8).ravel()])
    kw = dict(method="DOP853", rtol=RTOL, atol=ATOL)
    wall, cpu = time.perf_counter(), time.process_time()
    first = solve_ivp(rhs, (0.0, window[0]), y0, **kw)
    second = solve_ivp(rhs, tuple(window), np.concatenate([first.y[:, -1], [0.0, 0.0]]), **kw)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    s_c, s_p = second.y[72:, -1] / (window[1] - window[0])
    return {
        "S_c": float(s_c),
        "S_p": float(s_p),
        "num_steps": int(first.t.size + second.t.size - 2),
        "nfev": int(first.nfev + second.nfev),
        "run_wall_s": wall,
        "run_cpu_s": cpu,
    }


# ----------------------------------------------------------------------------- main



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--t-final", type=float, default=2000.0)
    parser.add_argument("--solvers", default="Tsit5,Dopri5,Dopri8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    window = (args.t_final / 2, args.t_final)

    report = {"benchmark": "fig2a_point", "metadata": metadata(), "params": PARAMS,
              "t_final": args.t_final, "window": window, "rtol": RTOL, "atol": ATOL}
    print(f"devices: {report['metadata']['devices']}  load: {os.getloadavg()[0]:.1f}", flush=True)
    report["scipy"] = ref = scipy_point(window)
    print(f"  scipy DOP853: {ref['run_wall_s']:.2f} s wall, {ref['run_cpu_s']:.2f} s CPU, "
          f"{ref['num_steps']} steps; S_c = {ref['S_c']:.10f}, S_p = {ref['S_p']:.10f}", flush=True)
    report["qsync_jax"] = []
    for name in args.solvers.split(","):
        row = jax_point(name, window, args.repeats)
        row["speedup_wall"] = ref["run_wall_s"] / row["run_wall_s"]
        row["speedup_cpu"] = ref["run_cpu_s"] / row["run_cpu_s"]
        row["max_rel_diff_vs_scipy"] = max(
            abs(row[k] - ref[k]) / abs(ref[k]) for k in ("S_c", "S_p")
        )
        report["qsync_jax"].append(row)
        print(f"  {name:7s}: run {row['run_wall_s']:.3f} s wall / {row['run_cpu_s']:.3f} s CPU "
              f"(x{row['speedup_wall']:.1f} / x{row['speedup_cpu']:.1f} scipy), compile "
              f"{row['compile_s']:.1f} s, {row['num_steps']} steps, S_c = {row['S_c']:.10f}, "
              f"S_p = {row['S_p']:.10f}, rel. diff {row['max_rel_diff_vs_scipy']:.1e}", flush=True)

    write_report("bench_fig2a_point", report, args.output)


if __name__ == "__main__":
    main()
