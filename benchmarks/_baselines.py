"""The baselines a user would write for one Fig. 2(a) point, and the cost model of a step.

A point: the optomechanical pair of Mari et al. (2013), Fig. 2(a) (ω = (1, 1.005), κ = 0.15,
γ = 0.005, g = 0.005, μ = 0.02, n_th = 0, E = 48; docs/physics-notes.md for the unit of E),
integrated from zero mean and vacuum covariance to ``t_final`` at rtol = atol = 1e-8, with the time
averages of S_c and S_p between the mechanical modes (1, 3) over (t_a, t_b) carried as two extra
ODE states. The equations are those of ``qs.OptomechanicalNetwork`` (xpxp, site-major): mean field
f of eq. (9) of Mari et al., drift A = ∂f/∂u, dC/dt = AC + CAᵀ + D.

- :func:`numpy_rhs`: a plain vectorized NumPy right-hand side (slices, one 8 × 8 product);
- :func:`numba_rhs`: the same equations compiled with numba (the strongest CPU peer), if numba
  is installed (``pip install qsync_jax[bench]``), else None;
- :func:`scipy_point`: SciPy ``solve_ivp`` (DOP853) with either right-hand side: the averages,
  steps, evaluations, wall and CPU time;
- :func:`float64_peak_per_core` and :func:`flops_per_step`: the cost model behind "fraction of
  peak" (a measured dense float64 matrix product per CPU-second; XLA's flop count of one vector
  field evaluation times the stages, plus the stage sums).
"""

import time

import numpy as np
from scipy.integrate import solve_ivp

import qsync_jax as qs

FIG2A = dict(qs.MARI2013_FIG2)  # Fig. 2: E = 48 is the caption's E/κ = 320
RTOL = ATOL = 1e-8
S2 = np.sqrt(2.0)


def _constants(params):
    omega = np.asarray(params["omega"], float)
    kappa, gamma, g, E, mu = (float(params[k]) for k in ("kappa", "gamma", "g", "E", "mu"))
    mech = gamma * (2 * float(params["n_th"]) + 1)
    D = np.diag([kappa, kappa, mech, mech] * 2)
    A0 = np.zeros((8, 8))
    for s in (0, 1):
        o = 4 * s
        A0[o, o] = A0[o + 1, o + 1] = -kappa
        A0[o + 2, o + 2] = A0[o + 3, o + 3] = -gamma
        A0[o + 2, o + 3], A0[o + 3, o + 2] = omega[s], -omega[s]
    A0[2, 7] = A0[6, 3] = -mu
    A0[3, 6] = A0[7, 2] = mu
    return omega, kappa, gamma, g, E, mu, D, A0


def numpy_rhs(params=FIG2A):
    """f(t, y) for y = (mean (8), covariance (64), [∫S_c, ∫S_p]) in vectorized NumPy."""
    omega, kappa, gamma, g, E, mu, D, A0 = _constants(params)
    # flat indices of the state-dependent drift entries, both sites at once (module docstring)
    rows = np.array([0, 4, 1, 5, 0, 4, 1, 5, 3, 7, 3, 7])
    cols = np.array([1, 5, 0, 4, 2, 6, 2, 6, 0, 4, 1, 5])
    flat = rows * 8 + cols
    idx = np.array([2, 3, 6, 7])

    def rhs(t, y):
        u, C = y[:8].reshape(2, 4), y[8:72].reshape(8, 8)
        xa, pa, xb, pb = u.T
        big = omega + S2 * g * xb
        gx, gp = S2 * g * xa, S2 * g * pa
        f = np.stack([-kappa * xa - big * pa + S2 * E, -kappa * pa + big * xa,
                      -gamma * xb + omega * pb - mu * pb[::-1],
                      -gamma * pb - omega * xb + mu * xb[::-1] + (gx * xa + gp * pa) / 2], 1)
        A = A0.copy()
        A.flat[flat] = np.concatenate([-big, big, -gp, gx, gx, gp])
        AC = A @ C
        out = [f.ravel(), (AC + AC.T + D).ravel()]
        if y.size > 72:  # inside the window: S_c and S_p of mechanical modes 1 and 3
            var_c = 0.5 * (C[2, 2] + C[6, 6] - 2 * C[2, 6] + C[3, 3] + C[7, 7] - 2 * C[3, 7])
            r = np.hypot(xb, pb)
            w = np.array([-pb[0] / r[0], xb[0] / r[0], pb[1] / r[1], -xb[1] / r[1]])
            out.append([1.0 / var_c, 1.0 / (w @ C[np.ix_(idx, idx)] @ w)])
        return np.concatenate(out)

    return rhs


def numba_rhs(params=FIG2A):
    """:func:`numpy_rhs` compiled with numba (explicit loops), or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    omega, kappa, gamma, g, E, mu, D, A0 = _constants(params)

    @numba.njit(cache=False)
    def rhs_impl(y, omega, kappa, gamma, g, E, mu, D, A0):
        out = np.empty(y.size)
        A = A0.copy()
        for s in range(2):
            o, other = 4 * s, 4 * (1 - s)
            xa, pa, xb, pb = y[o], y[o + 1], y[o + 2], y[o + 3]
            big = omega[s] + S2 * g * xb
            out[o] = -kappa * xa - big * pa + S2 * E
            out[o + 1] = -kappa * pa + big * xa
            out[o + 2] = -gamma * xb + omega[s] * pb - mu * y[other + 3]
            out[o + 3] = -gamma * pb - omega[s] * xb + mu * y[other + 2] + g * (xa**2 + pa**2) / S2
            A[o, o + 1], A[o + 1, o] = -big, big
            A[o, o + 2], A[o + 1, o + 2] = -S2 * g * pa, S2 * g * xa
            A[o + 3, o], A[o + 3, o + 1] = S2 * g * xa, S2 * g * pa
        for i in range(8):
            for j in range(8):
                acc = 0.0
                for k in range(8):
                    acc += A[i, k] * y[8 + 8 * k + j] + A[j, k] * y[8 + 8 * i + k]
                out[8 + 8 * i + j] = acc + D[i, j]
        if y.size > 72:
            C = y[8:72].reshape(8, 8)
            var_c = 0.5 * (C[2, 2] + C[6, 6] - 2 * C[2, 6] + C[3, 3] + C[7, 7] - 2 * C[3, 7])
            r0, r1 = np.hypot(y[2], y[3]), np.hypot(y[6], y[7])
            w = np.array([-y[3] / r0, y[2] / r0, y[7] / r1, -y[6] / r1])
            idx = (2, 3, 6, 7)
            q = 0.0
            for a in range(4):
                for b in range(4):
                    q += w[a] * C[idx[a], idx[b]] * w[b]
            out[72], out[73] = 1.0 / var_c, 1.0 / q
        return out

    def rhs(t, y):
        return rhs_impl(y, omega, kappa, gamma, g, E, mu, D, A0)

    rhs(0.0, np.concatenate([np.ones(8), np.eye(8).ravel(), [0.0, 0.0]]))  # compile now
    return rhs


def scipy_point(rhs, window):
    """DOP853 on mean, covariance and the two running integrals; times apart from compiling."""
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
        "cores_used": cpu / wall,
    }


def check_agreement(reference, row, tolerance=1e-5):
    """Largest relative difference of S_c, S_p between two runs; AssertionError beyond
    ``tolerance`` (both are solved at rtol = 1e-8; the limit cycle's neutral phase lets errors
    accumulate over the run)."""
    diff = max(abs(row[k] - reference[k]) / abs(reference[k]) for k in ("S_c", "S_p"))
    assert diff < tolerance, f"results disagree: {reference} vs {row}"
    return diff


def float64_peak_per_core(n=1024, repeats=3):
    """Measured float64 rate of a dense n × n matrix product, flop per CPU-second."""
    a = np.random.default_rng(0).normal(size=(n, n))
    best = np.inf
    for _ in range(repeats):
        cpu = time.process_time()
        a @ a
        best = min(best, time.process_time() - cpu)
    return 2 * n**3 / best


def flops_per_step(solver=None, n_extra=2):
    """Flops of one Runge–Kutta step on the Fig. 2(a) window state: XLA's count for one vector
    field evaluation (mean, covariance and the two measures) times the stages, plus the stage
    sums (2 flops per nonzero tableau coefficient and state entry)."""
    import diffrax as dfx
    import jax
    import jax.numpy as jnp

    solver = solver or dfx.Dopri8()
    tableau = type(solver).tableau
    model = qs.optomechanical_pair(**FIG2A)
    measures = qs.SyncMeasures((1, 3))
    state = qs.evolve(model, jnp.array([10.0])).states
    state = jax.tree_util.tree_map(lambda x: x[0], state)

    def field(state):
        return model.vector_field(0.0, state), measures(0.0, state)

    cost = jax.jit(field).lower(state).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    size = 72 + n_extra
    coefficients = sum(int(np.count_nonzero(row)) for row in tableau.a_lower)
    coefficients += int(np.count_nonzero(tableau.b_sol) + np.count_nonzero(tableau.b_error))
    return tableau.num_stages * float(cost["flops"]) + 2 * size * coefficients
