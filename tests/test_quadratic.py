"""QuadraticLindbladModel against the master equation in a Fock basis (QuTiP), and its transforms.

References (tests/README.md): the Lindbladian applied to low-Fock states (exact moment equations),
``qutip.steadystate`` and ``qutip.mesolve`` at cutoff N = 7 per mode (truncation error ≤ 3e-8 for
the ~0.01 quanta of these models, so agreement to 1e-7 is required), the hand-written drifts of
CorrelatedBathOscillators and OptomechanicalNetwork, and central finite differences.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import qutip as qt
from helpers import finite_difference_grad

import qsync_jax as qs

CUTOFF = 7
N_RANDOM = 20
N_DEFAULT = 3  # random models in the default suite; the other 17 are marked slow


def random_model(seed, n=2):
    """Random M, K, F and 2–4 jumps, redrawn until stable with < 0.01 quanta in all (so that the
    Fock cutoff 7 truncates ≤ 3e-8)."""
    rng = np.random.default_rng(seed)
    while True:
        M, K, F, J = _draw(rng, n)
        sol = qs.solve_steady_state(build(M, K, F, J), throw=False)
        if qs.status_names(sol.status) == "success" and float(
                jnp.sum(qs.occupations(sol.state))) < 0.01:
            return M, K, F, J


def _draw(rng, n):
    X = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    M = 0.3 * (X + X.conj().T) + np.diag(rng.uniform(0.5, 1.5, n))
    Y = 0.02 * (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    K = Y + Y.T
    F = 0.04 * (rng.normal(size=n) + 1j * rng.normal(size=n))
    k = int(rng.integers(2, 5))
    loss = 1.0 * (rng.normal(size=(k, n)) + 1j * rng.normal(size=(k, n)))
    gain = 0.03 * (rng.normal(size=(k, n)) + 1j * rng.normal(size=(k, n)))
    return M, K, F, np.concatenate([loss, gain], axis=1)


def fock_problem(M, K, F, J, N):
    """H, collapse operators and quadratures (xpxp) in a Fock basis of cutoff N per mode."""
    n = M.shape[0]
    a = [qt.tensor(*[qt.destroy(N) if i == j else qt.qeye(N) for j in range(n)])
         for i in range(n)]
    H = 0
    for i in range(n):
        H += F[i] * a[i].dag() + np.conj(F[i]) * a[i]
        for j in range(n):
            H += M[i, j] * a[i].dag() * a[j]
            H += 0.5 * (K[i, j] * a[i].dag() * a[j].dag() + np.conj(K[i, j]) * a[j] * a[i])
    c_ops = [sum(J[r, i] * a[i] + J[r, n + i] * a[i].dag() for i in range(n))
             for r in range(J.shape[0])]
    u = []
    for i in range(n):
        u += [(a[i] + a[i].dag()) / np.sqrt(2), (a[i] - a[i].dag()) / (1j * np.sqrt(2))]
    return H, c_ops, u


def moments(rho, u):
    mean = np.array([qt.expect(o, rho).real for o in u])
    m = len(u)
    S = np.array([[qt.expect(0.5 * (u[i] * u[j] + u[j] * u[i]), rho).real for j in range(m)]
                  for i in range(m)])
    return mean, S - np.outer(mean, mean)


def build(M, K, F, J):
    return qs.QuadraticLindbladModel(M, pairing=K, jumps=J, drive=F)


# ------------------------------------------------------------------ exact moment equations


def random_low_fock_state(rng, n, N, support):
    """A random density matrix on Fock states < support per mode, embedded in cutoff N."""
    k = support**n
    X = rng.normal(size=(k, k)) + 1j * rng.normal(size=(k, k))
    small = X @ X.conj().T
    small /= np.trace(small)
    idx = [int(np.ravel_multi_index(ix, (N,) * n)) for ix in np.ndindex(*(support,) * n)]
    rho = np.zeros((N**n, N**n), complex)
    rho[np.ix_(idx, idx)] = small
    return qt.Qobj(rho, dims=[[N] * n, [N] * n])


def lindbladian_moments(H, c_ops, u, rho):
    """(mean, C, dmean/dt, dC/dt) of ``rho`` from the Lindbladian (no approximation)."""
    drho = qt.vector_to_operator(qt.liouvillian(H, c_ops) * qt.operator_to_vector(rho))
    mean, cov = moments(rho, u)
    dmean = np.array([(o * drho).tr().real for o in u])
    m = len(u)
    dS = np.array([[(0.5 * (u[i] * u[j] + u[j] * u[i]) * drho).tr().real for j in range(m)]
                   for i in range(m)])
    return mean, cov, dmean, dS - np.outer(dmean, mean) - np.outer(mean, dmean)


def test_moment_equations_are_exact_on_low_fock_states():
    """d⟨u⟩/dt = A⟨u⟩ + b, dC/dt = AC + CAᵀ + D from the Lindbladian itself, for random M, K, F, J.

    On a (non-Gaussian) state with < 2 quanta per mode a cutoff 6 truncates neither the
    Lindbladian (which moves ≤ 2 quanta) nor the second moments, so both sides agree to rounding.
    """
    rng = np.random.default_rng(1)
    for seed in range(4):
        M, K, F, J = random_model(100 + seed)
        K, J = 20 * K, J * np.concatenate([np.ones(2), 10 * np.ones(2)])  # O(1) entries
        model = build(M, K, F, J)
        A, b, D = model.drift_matrix(), model.drive_vector(), model.diffusion_matrix()
        H, c_ops, u = fock_problem(M, K, F, J, 6)
        rho = random_low_fock_state(rng, 2, 6, 2)
        mean, cov, dmean, dcov = lindbladian_moments(H, c_ops, u, rho)
        np.testing.assert_allclose(dmean, A @ mean + b, atol=1e-12)
        np.testing.assert_allclose(dcov, A @ cov + cov @ A.T + D, atol=1e-12)


# ------------------------------------------------------------------- QuTiP brute force


@pytest.mark.parametrize(
    "seed",
    [pytest.param(s, marks=() if s < N_DEFAULT else pytest.mark.slow) for s in range(N_RANDOM)],
)
def test_steady_state_matches_qutip(seed):
    """Mean and covariance of ``steady_state`` vs ``qutip.steadystate`` at cutoff 7: ≤ 1e-7."""
    M, K, F, J = random_model(seed)
    sol = qs.solve_steady_state(build(M, K, F, J))
    assert qs.status_names(sol.status) == "success"
    mean, cov = moments(qt.steadystate(*fock_problem(M, K, F, J, CUTOFF)[:2]),
                        fock_problem(M, K, F, J, CUTOFF)[2])
    np.testing.assert_allclose(sol.state.mean, mean, atol=1e-7)
    np.testing.assert_allclose(sol.state.cov, cov, atol=1e-7)


def test_evolution_from_coherent_state_matches_mesolve():
    M, K, F, J = random_model(7)
    alpha = np.array([0.3 - 0.1j, -0.2j])
    ts = np.linspace(0.0, 4.0, 9)
    traj = qs.evolve(build(M, K, F, J), jnp.asarray(ts), state0=qs.coherent(alpha),
                     config=qs.SolverConfig(rtol=1e-11, atol=1e-11))
    H, c_ops, u = fock_problem(M, K, F, J, CUTOFF)
    psi0 = qt.tensor(*[qt.coherent(CUTOFF, a) for a in alpha])
    result = qt.mesolve(H, psi0, ts, c_ops, options={"atol": 1e-11, "rtol": 1e-11})
    for k, rho in enumerate(result.states):
        mean, cov = moments(rho, u)
        np.testing.assert_allclose(traj.states.mean[k], mean, atol=1e-7)
        np.testing.assert_allclose(traj.states.cov[k], cov, atol=1e-7)


# -------------------------------------------------------------- the builder reproduces models


def pair_as_quadratic(model: qs.CorrelatedBathOscillators) -> qs.QuadraticLindbladModel:
    """The pair's master equation as H and the jumps L±, L'± of eqs. (11)–(12)."""
    xi, gamma, n_th = float(model.xi), float(model.gamma), np.asarray(model.n_th)
    loss, gain = np.sqrt(gamma * (n_th + 1)), np.sqrt(gamma * n_th)
    rows = []
    for s in (1, -1):
        w = np.sqrt((1 + s * xi) / 2)
        rows.append(np.concatenate([w * loss * [1, s], [0, 0]]))
        rows.append(np.concatenate([[0, 0], w * gain * [1, s]]))
    M = np.diag(np.asarray(model.omega)) + float(model.g) * (1 - np.eye(2))
    return qs.QuadraticLindbladModel(M, jumps=np.array(rows))


def test_builder_reproduces_correlated_bath_oscillators():
    for params in [dict(omega=(1.0, 1.2), g=0.1, gamma=0.3, xi=0.6, n_th=(0.1, 0.7)),
                   dict(omega=(0.9, 1.0), g=-0.4, gamma=0.05, xi=-1.0, n_th=(1.5, 1.5))]:
        model = qs.CorrelatedBathOscillators(**params)
        quad = pair_as_quadratic(model)
        np.testing.assert_allclose(quad.drift_matrix(), model.drift_matrix(), rtol=0, atol=1e-13)
        np.testing.assert_allclose(quad.diffusion_matrix(), model.diffusion_matrix(), rtol=0,
                                   atol=1e-13)
        np.testing.assert_array_equal(quad.drive_vector(), np.zeros(4))


def test_builder_reproduces_linearized_optomechanics():
    """H of the fluctuations around a mean (α_j, β_j) of the optomechanical pair:
    −Ω_j a†a + ω_j b†b − g_j(ᾱ_j a† + ᾱ_j* a)(b + b†) − μ(b₁†b₂ + h.c.), Ω_j = Δ_j + √2 g_j x_bj."""
    om = qs.optomechanical_pair(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0,
                                mu=0.02, n_th=0.3)
    mean = jnp.asarray(np.random.default_rng(3).normal(size=8) * 40)
    u = np.asarray(mean).reshape(2, 4)
    M = np.zeros((4, 4), complex)
    K = np.zeros((4, 4), complex)
    rows = []
    for j in range(2):
        a, b = 2 * j, 2 * j + 1
        g, alpha = float(om.g[j]), (u[j, 0] + 1j * u[j, 1]) / np.sqrt(2)
        M[a, a] = -(float(om.delta[j]) + np.sqrt(2) * g * u[j, 2])
        M[b, b] = float(om.omega[j])
        M[a, b], M[b, a] = -g * alpha, -g * np.conj(alpha)
        K[a, b] = K[b, a] = -g * alpha
        kappa, gamma, n_th = float(om.kappa[j]), float(om.gamma[j]), float(om.n_th[j])
        for mode, rate in ((a, 2 * kappa), (b, 2 * gamma * (n_th + 1))):
            rows.append(np.eye(8)[mode] * np.sqrt(rate))
        rows.append(np.eye(8)[4 + b] * np.sqrt(2 * gamma * n_th))
    M[1, 3] = M[3, 1] = -float(om.mu)
    quad = qs.QuadraticLindbladModel(M, pairing=K, jumps=np.array(rows))
    np.testing.assert_allclose(quad.drift_matrix(), om.drift(0.0, mean), rtol=0, atol=1e-13)
    np.testing.assert_allclose(quad.diffusion_matrix(), om.diffusion(0.0, mean), rtol=0,
                               atol=1e-13)


# ----------------------------------------------------------- gradients, sweeps, optimize


def test_gradients_match_finite_differences():
    """d(occupation of mode 0 at the steady state)/d(entries of M, K, J)."""
    M0, K0, F0, J0 = random_model(11)

    def occupation(M, K, J):
        state = qs.steady_state(qs.QuadraticLindbladModel(M, pairing=K, jumps=J, drive=F0))
        return qs.occupations(state)[0]

    def of_m01(x):  # Re M₀₁ with M₁₀ = conj(M₀₁): a Hermitian family
        M = jnp.asarray(M0).at[0, 1].set(jax.lax.complex(x, M0[0, 1].imag))
        M = M.at[1, 0].set(jnp.conj(M[0, 1]))
        return occupation(M, K0, J0)

    def of_k00(x):
        return occupation(M0, jnp.asarray(K0).at[0, 0].set(jax.lax.complex(x, K0[0, 0].imag)), J0)

    def of_j(x):  # imaginary part of J[1, 2] (the a₀† weight of the second jump)
        return occupation(M0, K0, jnp.asarray(J0).at[1, 2].set(jax.lax.complex(J0[1, 2].real, x)))

    for f, x in ((of_m01, M0[0, 1].real), (of_k00, K0[0, 0].real), (of_j, J0[1, 2].imag)):
        f = jax.jit(f)
        grad = jax.grad(f)(jnp.asarray(x))
        fd = finite_difference_grad(f, x, h=1e-5)
        assert abs(float(grad) - float(fd)) <= 1e-7 * max(1.0, abs(float(fd))), (f, grad, fd)
        assert abs(float(grad)) > 1e-6  # the test can fail


def test_leaves_are_real_and_transformations_work():
    M, K, F, J = random_model(5)
    model = build(M, K, F, J)
    assert all(not jnp.iscomplexobj(x) for x in jax.tree_util.tree_leaves(model))
    np.testing.assert_allclose(model.hamiltonian, M, atol=1e-15)
    np.testing.assert_allclose(model.jumps, J, atol=0)
    again = dataclasses.replace(model, drive_real=np.zeros(2))
    np.testing.assert_allclose(again.drive, 1j * F.imag, atol=0)
    # vmap over a leaf == loop, and the public sweep over a field
    values = np.linspace(0.0, 0.2, 3)
    sweep = qs.sweep(lambda m: qs.solve_steady_state(m, throw=False), model,
                     {"drive_imag[1]": values}, progress=False)
    for k, v in enumerate(values):
        entry = np.asarray(model.drive_imag).copy()
        entry[1] = v
        one = qs.steady_state(dataclasses.replace(model, drive_imag=entry))
        np.testing.assert_allclose(np.asarray(sweep["state_mean"])[k], one.mean, atol=1e-13)
    # grad w.r.t. a whole leaf (optimize's path): finite and symmetric for the Hermitian part
    grad = jax.grad(lambda m: qs.occupations(qs.steady_state(m))[0])(model)
    g = np.asarray(grad.hamiltonian_real)
    assert np.all(np.isfinite(g)) and np.allclose(g, g.T, atol=1e-14)


def test_optimize_over_a_leaf():
    M, K, F, J = random_model(5)
    model = build(M, K, F, J)

    def objective(m):
        return qs.occupations(qs.steady_state(m))[0]

    best, history = qs.optimize(objective, model, {"drive_real": "each"}, steps=30, progress=False)
    assert float(history.final_objective) < float(objective(model))


# ------------------------------------------------------------------------ hostile input


GOOD = random_model(0)


@pytest.mark.parametrize(
    "change, name",
    [
        (dict(hamiltonian=np.array([[1.0, 0.2], [0.3, 1.0]])), "hamiltonian"),
        (dict(hamiltonian=np.array([[1.0, 0.2j], [0.2j, 1.0]])), "hamiltonian"),
        (dict(hamiltonian=np.ones((2, 3))), "hamiltonian"),
        (dict(hamiltonian=np.array([[np.nan, 0], [0, 1.0]])), "hamiltonian"),
        (dict(hamiltonian="abc"), "hamiltonian"),
        (dict(hamiltonian=None), "hamiltonian"),
        (dict(pairing=np.array([[0.0, 0.1], [0.2, 0.0]])), "pairing"),
        (dict(pairing=np.zeros((3, 3))), "pairing"),
        (dict(pairing=np.array([[np.inf, 0], [0, 0]])), "pairing"),
        (dict(jumps=np.ones((2, 3))), "jumps"),
        (dict(jumps=np.ones(4)), "jumps"),
        (dict(jumps=np.full((1, 4), np.nan)), "jumps"),
        (dict(drive=np.ones(3)), "drive"),
        (dict(drive=np.array([1.0, np.inf])), "drive"),
    ],
)
def test_bad_input_raises(change, name):
    M, K, F, J = GOOD
    kwargs = dict(hamiltonian=M, pairing=K, jumps=J, drive=F) | change
    with pytest.raises(ValueError, match=name):
        qs.QuadraticLindbladModel(**kwargs)


def test_bad_split_input_raises():
    M, K, F, J = GOOD
    with pytest.raises(ValueError, match="not both"):
        qs.QuadraticLindbladModel(M, drive=F, drive_real=np.zeros(2))
    with pytest.raises(ValueError, match="drive_real"):
        qs.QuadraticLindbladModel(M, drive_real=np.zeros(2) + 1j)
    with pytest.raises(ValueError, match="hamiltonian"):
        qs.QuadraticLindbladModel(hamiltonian_real=np.eye(2), hamiltonian_imag=np.ones((2, 2)))


def test_no_jumps_has_no_steady_state():
    model = qs.QuadraticLindbladModel(np.eye(2), jumps=())
    assert model.jumps.shape == (0, 4)
    sol = qs.solve_steady_state(model, throw=False)
    assert qs.status_names(sol.status) == "no_steady_state"
