"""CorrelatedBathOscillators against the master equation of Bittner & Tyagi (2025), in a Fock basis.

References (tests/README.md): QuTiP with exactly the Lindblad operators of eqs. (11)–(12) — the
moment equations on low-Fock states (exact), ``steadystate`` and ``mesolve`` (truncation accuracy,
converging in the cutoff); closed forms derived in docs/physics-notes.md.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import qutip as qt
from helpers import finite_difference_grad

import qsync_jax as qs

# (omega, g, gamma, xi, n_th): stable cases, unequal temperatures, |ξ| up to 1, detuned or not.
CASES = [
    ((1.0, 1.0), 0.1, 0.1, 0.5, (0.1, 0.1)),
    ((1.0, 1.2), 0.05, 0.2, -0.7, (0.0, 0.2)),
    ((1.0, 1.0), 0.3, 0.2, 0.9, (0.15, 0.2)),
    ((1.0, 1.3), 0.1, 0.3, -1.0, (0.1, 0.12)),
    ((0.8, 1.0), 0.4, 0.05, -0.3, (0.25, 0.0)),
]


def model_of(case):
    omega, g, gamma, xi, n_th = case
    return qs.CorrelatedBathOscillators(omega=omega, g=g, gamma=gamma, xi=xi, n_th=n_th)


# ----------------------------------------------------------------------------- QuTiP reference


@functools.cache
def fock_problem(case, N):
    """H, the collapse operators L±, L'± of eqs. (11)–(12), and the quadratures (x₁, p₁, x₂, p₂)."""
    (w1, w2), g, gamma, xi, (n1, n2) = case
    a1 = qt.tensor(qt.destroy(N), qt.qeye(N))
    a2 = qt.tensor(qt.qeye(N), qt.destroy(N))
    H = w1 * a1.dag() * a1 + w2 * a2.dag() * a2 + g * (a1.dag() * a2 + a2.dag() * a1)
    L = (np.sqrt(gamma * (n1 + 1)) * a1, np.sqrt(gamma * (n2 + 1)) * a2)
    L_prime = (np.sqrt(gamma * n1) * a1.dag(), np.sqrt(gamma * n2) * a2.dag())
    c_ops = []
    for sign in (1, -1):
        weight = np.sqrt((1 + sign * xi) / 2)
        c_ops += [weight * (L[0] + sign * L[1]), weight * (L_prime[0] + sign * L_prime[1])]
    u = [(a + a.dag()) / np.sqrt(2) for a in (a1, a2)]
    v = [(a - a.dag()) / (1j * np.sqrt(2)) for a in (a1, a2)]
    return H, c_ops, [u[0], v[0], u[1], v[1]], (a1, a2)


def second_moment_ops(u):
    return [0.5 * (u[i] * u[j] + u[j] * u[i]) for i in range(4) for j in range(i, 4)]


def moments_from(first, second):
    """Mean (…, 4) and covariance (…, 4, 4) from ⟨u_i⟩ and the upper triangle of ½⟨{u_i, u_j}⟩."""
    mean = np.stack(first, axis=-1)
    S = np.zeros(mean.shape + (4,))
    iu = np.triu_indices(4)
    S[(..., *iu)] = np.stack(second, axis=-1)
    S = S + np.swapaxes(S, -1, -2) - S * np.eye(4)
    return mean, S - mean[..., :, None] * mean[..., None, :]


def qutip_steady_state(case, N):
    H, c_ops, u, _ = fock_problem(case, N)
    rho = qt.steadystate(H, c_ops)
    first = [qt.expect(o, rho).real for o in u]
    second = [qt.expect(o, rho).real for o in second_moment_ops(u)]
    return moments_from(first, second)


# --------------------------------------------------------------- derivation of A and D (exact)


def random_low_fock_state(rng, N, support):
    """A random density matrix on Fock states n₁, n₂ < support, embedded in the cutoff N."""
    k = support**2
    X = rng.normal(size=(k, k)) + 1j * rng.normal(size=(k, k))
    small = X @ X.conj().T
    small /= np.trace(small)
    idx = np.array([n1 * N + n2 for n1 in range(support) for n2 in range(support)])
    rho = np.zeros((N * N, N * N), complex)
    rho[np.ix_(idx, idx)] = small
    return qt.Qobj(rho, dims=[[N, N], [N, N]])


def test_moment_equations_are_exact_on_low_fock_states():
    """d⟨u⟩/dt = A⟨u⟩ and dC/dt = AC + CAᵀ + D, with d/dt from the Lindbladian of eqs. (11)–(12).

    For a state supported on n < 3 quanta per mode, a cutoff N = 7 never truncates the
    Lindbladian or the moments, so the two sides agree to rounding — for any state (Gaussian or
    not) and any parameters, which checks every entry of A and D including the ξ cross terms.
    """
    rng = np.random.default_rng(0)
    N = 7
    for _ in range(12):
        case = (
            tuple(rng.uniform(0.5, 1.5, 2)),
            rng.uniform(-0.5, 0.5),
            rng.uniform(0.05, 1.0),
            rng.uniform(-1.0, 1.0),
            tuple(rng.uniform(0.0, 2.0, 2) * rng.integers(0, 2, 2)),
        )
        H, c_ops, u, _ = fock_problem(case, N)
        liouvillian = qt.liouvillian(H, c_ops)
        rho = random_low_fock_state(rng, N, 3)
        drho = qt.vector_to_operator(liouvillian * qt.operator_to_vector(rho))
        second = second_moment_ops(u)
        mean, cov = moments_from(
            [qt.expect(o, rho).real for o in u], [qt.expect(o, rho).real for o in second]
        )
        dfirst = np.array([(o * drho).tr().real for o in u])
        dsecond = [(o * drho).tr().real for o in second]
        _, dS = moments_from(np.zeros(4), dsecond)  # d⟨sym u_i u_j⟩/dt (zero mean: no subtraction)
        dcov = dS - np.outer(dfirst, mean) - np.outer(mean, dfirst)

        model = model_of(case)
        A, D = np.asarray(model.drift_matrix()), np.asarray(model.diffusion_matrix())
        np.testing.assert_allclose(dfirst, A @ mean, atol=1e-12)
        np.testing.assert_allclose(dcov, A @ cov + cov @ A.T + D, atol=1e-12)


def test_amplitude_matrix_is_the_complex_form_of_the_drift():
    model = model_of(CASES[2])
    K = np.asarray(model.amplitude_matrix())
    A = np.asarray(model.drift_matrix())
    # ⟨a_k⟩ = (x_k + i p_k)/√2: the 2×2 block (k, l) of A is [[Re K, −Im K], [Im K, Re K]].
    for k in range(2):
        for j in range(2):
            block = A[2 * k : 2 * k + 2, 2 * j : 2 * j + 2]
            z = K[k, j]
            np.testing.assert_allclose(block, [[z.real, -z.imag], [z.imag, z.real]], atol=1e-15)
    # Paper eq. (21), ⟨a⟩ rows: −iω₁ − γ/2 and −ig − ξγ₁₂/2.
    (w1, _), g, gamma, xi, _ = CASES[2]
    assert K[0, 0] == pytest.approx(-1j * w1 - gamma / 2)
    assert K[0, 1] == pytest.approx(-1j * g - xi * float(model.gamma12) / 2)


def test_drift_is_jacobian_of_mean_field_and_diffusion_is_psd():
    model = model_of(CASES[1])
    u = jnp.asarray([0.3, -0.2, 0.5, 0.1])
    jac = jax.jacfwd(model.mean_field, argnums=1)(jnp.asarray(0.0), u)
    np.testing.assert_allclose(jac, model.drift(jnp.asarray(0.0), u), atol=1e-15)
    assert np.all(np.linalg.eigvalsh(np.asarray(model.diffusion_matrix())) >= 0)
    np.testing.assert_array_equal(model.drive_vector(), np.zeros(4))


# ----------------------------------------------------------------- steady states vs QuTiP


@pytest.mark.parametrize("case", CASES)
def test_steady_state_matches_qutip(case):
    """Covariances agree to the truncation error, which shrinks with the Fock cutoff N."""
    state = qs.steady_state(model_of(case))
    errors = []
    for N in (6, 8):
        mean, cov = qutip_steady_state(case, N)
        np.testing.assert_allclose(mean, 0.0, atol=1e-10)
        errors.append(np.max(np.abs(cov - np.asarray(state.cov))))
    assert errors[1] < 0.2 * errors[0]
    assert errors[1] < 2e-4


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_steady_state_matches_converged_qutip(case):
    """Geometric convergence in the cutoff N = 8…14, to ≤ 1e-7 at N = 14; the difference from
    QuTiP at N = 12 is QuTiP's own truncation error (its change from N = 12 to 14)."""
    cov = np.asarray(qs.steady_state(model_of(case)).cov)
    qutip_covs = {N: qutip_steady_state(case, N)[1] for N in (8, 10, 12, 14)}
    errors = [np.max(np.abs(c - cov)) for c in qutip_covs.values()]
    assert all(b < 0.5 * a for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 1e-7
    truncation_12 = np.max(np.abs(qutip_covs[12] - qutip_covs[14]))
    assert errors[2] < 1.5 * truncation_12 + 1e-10


# --------------------------------------------------------------- time evolution vs QuTiP


def evolution_against_qutip(case, alpha, N, ts):
    H, c_ops, u, _ = fock_problem(case, N)
    psi0 = qt.tensor(qt.coherent(N, alpha[0]), qt.coherent(N, alpha[1]))
    e_ops = list(u) + second_moment_ops(u)
    result = qt.mesolve(H, psi0, ts, c_ops, e_ops=e_ops, options={"atol": 1e-12, "rtol": 1e-10})
    expect = [np.real(x) for x in result.expect]
    mean_q, cov_q = moments_from(expect[:4], expect[4:])

    amplitude = np.array([alpha[0].real, alpha[0].imag, alpha[1].real, alpha[1].imag])
    state0 = qs.GaussianState(mean=jnp.asarray(np.sqrt(2) * amplitude), cov=0.5 * jnp.eye(4))
    config = qs.SolverConfig(rtol=1e-11, atol=1e-11)
    traj = qs.evolve(model_of(case), jnp.asarray(ts), state0=state0, config=config)
    return (
        np.max(np.abs(mean_q - np.asarray(traj.states.mean))),
        np.max(np.abs(cov_q - np.asarray(traj.states.cov))),
    )


def test_evolution_from_coherent_states_matches_qutip():
    case = ((1.0, 1.1), 0.3, 0.2, 0.6, (0.05, 0.15))
    alpha, ts = (0.4 + 0.2j, -0.3 + 0.3j), np.linspace(0, 10, 11)
    coarse = evolution_against_qutip(case, alpha, 8, ts)
    mean_err, cov_err = evolution_against_qutip(case, alpha, 10, ts)
    assert cov_err < 0.05 * coarse[1]
    assert mean_err < 1e-7 and cov_err < 2e-7


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES[1:4])
def test_evolution_matches_converged_qutip(case):
    ts = np.linspace(0.0, 15.0, 16)
    coarse = evolution_against_qutip(case, (0.5 - 0.4j, 0.3 + 0.6j), 10, ts)
    fine = evolution_against_qutip(case, (0.5 - 0.4j, 0.3 + 0.6j), 14, ts)
    assert fine[1] < 0.2 * coarse[1]
    assert max(fine) < 5e-7


# ---------------------------------------------------------------- closed forms at a steady state


def corrected_resonant_steady_state(g, gamma, xi, n1, n2):
    """⟨a₁†a₁⟩, ⟨a₂†a₂⟩, ⟨a₁†a₂⟩ on resonance from the master equation (docs/physics-notes.md).

    Δ = (γ₁₂(n̄₁+n̄₂) − 2γ√(n̄₁n̄₂)) / (2(γ² − γ₁₂²ξ²)); the paper's eq. (30) has
    γ₁₂(n̄₁+n̄₂+1) + 2γ√(n̄₁n̄₂) in the numerator and +γξΔ in eq. (29).
    """
    g12 = gamma * (np.sqrt((n1 + 1) * (n2 + 1)) - np.sqrt(n1 * n2))
    delta = (g12 * (n1 + n2) - 2 * gamma * np.sqrt(n1 * n2)) / (2 * (gamma**2 - g12**2 * xi**2))
    bias = 2 * g**2 / (4 * g**2 + gamma**2) * (n2 - n1)
    n1_ss = n1 + bias + xi**2 * g12 * delta
    n2_ss = n2 - bias + xi**2 * g12 * delta
    c12 = 1j * g * gamma / (4 * g**2 + gamma**2) * (n2 - n1) - gamma * xi * delta
    return n1_ss, n2_ss, c12


def normal_ordered(cov):
    """N_kl = ⟨a_k†a_l⟩ − ⟨a_k†⟩⟨a_l⟩ from the quadrature covariance (⟨a_k a_l⟩ terms dropped)."""
    cov = np.asarray(cov)
    x, p = cov[0::2, 0::2], cov[1::2, 1::2]
    xp, px = cov[0::2, 1::2], cov[1::2, 0::2]
    return 0.5 * (x + p + 1j * (xp - px)) - 0.5 * np.eye(2)


@pytest.mark.parametrize(
    "g, gamma, xi, n1, n2",
    [(0.1, 0.1, 0.4, 0.0, 1.0), (1.0, 0.1, -0.6, 0.5, 0.2), (0.3, 0.7, 0.9, 2.0, 2.0)],
)
def test_resonant_steady_state_closed_form(g, gamma, xi, n1, n2):
    model = qs.CorrelatedBathOscillators(omega=1.3, g=g, gamma=gamma, xi=xi, n_th=(n1, n2))
    N = normal_ordered(qs.steady_state(model).cov)
    n1_ss, n2_ss, c12 = corrected_resonant_steady_state(g, gamma, xi, n1, n2)
    np.testing.assert_allclose([N[0, 0].real, N[1, 1].real], [n1_ss, n2_ss], rtol=1e-12)
    assert N[0, 1] == pytest.approx(c12, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("case", [CASES[0], ((1.0, 1.0), 0.0, 0.2, -0.6, (0.0, 0.0))])
def test_printed_closed_form_is_not_the_steady_state(case):
    """Eqs. (27)–(30) as printed vs QuTiP at a common temperature, where the steady state is
    thermal (n̄ + ½, no correlation): eq. (27) adds ξ²γ₁₂Δ > 0 and eq. (29) a correlation γξΔ."""
    _, g, gamma, xi, (n, _) = case
    N = normal_ordered(qutip_steady_state(case, 8)[1])
    np.testing.assert_allclose(N, n * np.eye(2), atol=1e-6)
    delta = (gamma * (2 * n + 1) + 2 * gamma * n) / (2 * gamma**2 * (1 - xi**2))  # γ₁₂ = γ
    printed_theta11 = n + 0.5 + xi**2 * gamma * delta
    printed_theta12 = gamma * xi * delta
    assert printed_theta11 - (N[0, 0].real + 0.5) > 0.04
    assert abs(printed_theta12) > 0.1


@pytest.mark.parametrize("xi", [-1.0, -0.3, 0.0, 0.8, 1.0])
def test_common_temperature_steady_state_is_thermal(xi):
    """Γ↓ = (n̄+1)γΞ and Γ↑ = n̄γΞ make (n̄ + ½)I stationary for any ξ, g, δ (unique if stable)."""
    model = qs.CorrelatedBathOscillators(omega=(1.0, 1.4), g=0.2, gamma=0.3, xi=xi, n_th=0.7)
    np.testing.assert_allclose(qs.steady_state(model).cov, 1.2 * np.eye(4), atol=1e-13)


def test_dark_mode_has_no_steady_state():
    """ξ = ±1 on resonance at a common temperature: Re λ = 0 (an undamped normal mode)."""
    for xi in (-1.0, 1.0):
        model = qs.CorrelatedBathOscillators(omega=1.0, g=0.1, gamma=0.2, xi=xi, n_th=0.3)
        sol = qs.solve_steady_state(model, throw=False)
        assert sol.status == qs.Status.no_steady_state
        assert abs(float(sol.spectral_abscissa)) < 1e-14
        assert np.all(np.isnan(sol.state.cov)) and np.all(np.isnan(sol.state.mean))
        with pytest.raises(Exception, match="no unique steady state"):
            qs.steady_state(model)


def test_instability_threshold_for_unequal_temperatures():
    """On resonance Re λ = −γ/2 + |ξ|γ₁₂/2: unstable beyond |ξ| = γ/γ₁₂ < 1 when n̄₁ ≠ n̄₂.

    The paper's eq. (31), ξ = ±1/√(n̄₁+n̄₂+1), coincides with it when one bath is at T = 0.
    """
    for n_th in [(0.0, 1.0), (1.0, 2.0), (0.3, 0.5)]:
        base = qs.CorrelatedBathOscillators(omega=1.0, g=0.2, gamma=0.1, xi=0.0, n_th=n_th)
        threshold = float(base.gamma / base.gamma12)
        assert threshold < 1
        for xi, expected in ((0.999 * threshold, qs.Status.success),
                             (1.001 * threshold, qs.Status.no_steady_state)):
            for sign in (1, -1):
                model = eqx.tree_at(lambda m: m.xi, base, jnp.asarray(sign * xi))
                assert qs.solve_steady_state(model, throw=False).status == expected
    base = qs.CorrelatedBathOscillators(omega=1.0, g=0.2, gamma=0.1, xi=0.0, n_th=(0.0, 3.0))
    assert float(base.gamma / base.gamma12) == pytest.approx(1 / np.sqrt(4.0))


# --------------------------------------------------------------------------- correlations


def random_stable_models(n, seed):
    rng = np.random.default_rng(seed)
    models = []
    while len(models) < n:
        model = qs.CorrelatedBathOscillators(
            omega=(1.0, 1.0 + rng.uniform(-0.5, 0.5) * rng.integers(0, 2)),
            g=rng.uniform(-1, 1),
            gamma=rng.uniform(0.01, 1.0),
            xi=rng.uniform(-1, 1),
            n_th=rng.exponential(1.0, 2) * rng.integers(0, 2, 2),
        )
        if qs.solve_steady_state(model, throw=False).status == qs.Status.success:
            models.append(model)
    return models


def test_no_entanglement_and_discord_below_mutual_information():
    """The paper claims steady-state entanglement; the master equation gives none.

    The steady state has ⟨a_k a_l⟩ = 0 and a normally ordered correlation matrix N ⪰ 0 (it
    integrates the positive source Γ↑), so its P function is a positive Gaussian: a classical,
    separable state. Its log-negativity vanishes; its Rényi-2 discord is positive whenever it is
    correlated, but stays below the mutual information (the paper says the two coincide).
    """
    for model in random_stable_models(40, seed=1):
        cov = np.asarray(qs.steady_state(model).cov)
        assert np.linalg.eigvalsh(normal_ordered(cov)).min() > -1e-10
        # The partial transpose's symplectic eigenvalues, from the Hermitian eigenproblem
        # (well conditioned): none below ½. log_negativity's two-mode closed form is accurate to
        # O(√ε) where they are degenerate (ν̃₊ = ν̃₋ = ½ here), a few 1e-9 depending on rounding.
        flip = np.diag([1.0, 1.0, 1.0, -1.0])
        assert float(qs.symplectic_eigenvalues(flip @ cov @ flip)[0]) > 0.5 - 1e-12
        assert float(qs.log_negativity(cov)) < 1e-7
        mi = float(qs.mutual_information(cov, kind="renyi2"))
        discord = float(qs.gaussian_discord(cov, kind="renyi2"))
        if mi > 1e-8:
            assert 0 < discord < mi


def test_exchange_current_matches_qutip_and_closed_form():
    """J = ig⟨a₂†a₁ − a₁†a₂⟩ against QuTiP; on resonance J = 2g²γ(n̄₂−n̄₁)/(4g²+γ²) for every ξ
    (eq. (34) as printed lacks the factor g)."""
    case = ((1.0, 1.0), 0.3, 0.2, 0.9, (0.15, 0.2))
    model = model_of(case)
    J = float(qs.exchange_current(model, qs.steady_state(model)))
    H, c_ops, _, (a1, a2) = fock_problem(case, 8)
    rho = qt.steadystate(H, c_ops)
    J_q = qt.expect(1j * 0.3 * (a2.dag() * a1 - a1.dag() * a2), rho).real
    assert J == pytest.approx(J_q, abs=2e-5)
    g, gamma, dn = 0.3, 0.2, 0.05
    for xi in (-0.5, 0.0, 0.5, 0.9):
        model = eqx.tree_at(lambda m: m.xi, model, jnp.asarray(xi))
        J = float(qs.exchange_current(model, qs.steady_state(model)))
        assert J == pytest.approx(2 * g**2 * gamma * dn / (4 * g**2 + gamma**2), rel=1e-10)
    # Off resonance the current depends on ξ.
    detuned = [
        qs.CorrelatedBathOscillators(omega=(1.0, 1.3), g=g, gamma=gamma, xi=xi, n_th=(0.15, 0.2))
        for xi in (0.0, 0.5)
    ]
    currents = [float(qs.exchange_current(m, qs.steady_state(m))) for m in detuned]
    assert abs(currents[1] - currents[0]) > 1e-3 * abs(currents[0])


def test_exchange_current_includes_the_mean_fields():
    model = model_of(CASES[0])
    alpha = np.array([0.3 + 0.4j, -0.2 + 0.1j])
    mean = np.sqrt(2) * np.array([alpha[0].real, alpha[0].imag, alpha[1].real, alpha[1].imag])
    state = qs.GaussianState(mean=jnp.asarray(mean), cov=0.5 * jnp.eye(4))
    expected = 2 * 0.1 * np.imag(np.conj(alpha[0]) * alpha[1])
    assert float(qs.exchange_current(model, state)) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="two-mode"):
        qs.exchange_current(model, qs.vacuum(3))


# ------------------------------------------------------------------------- spectrum and EPs


def closed_form_eigenvalues(omega, g, gamma, xi, g12):
    """Eigenvalues of K: −γ/2 − iω̄ ± ½√((2ig + ξγ₁₂)² − δ²) (eq. (24) has −γ and +iω̄)."""
    w_bar, delta = 0.5 * (omega[0] + omega[1]), omega[0] - omega[1]
    root = np.sqrt((2j * g + xi * g12) ** 2 - delta**2 + 0j)
    return np.array([-gamma / 2 - 1j * w_bar + s * 0.5 * root for s in (1, -1)])


def as_sorted(z):
    z = np.asarray(z)
    return z[np.lexsort((z.real, z.imag))]


@pytest.mark.parametrize("xi", [0.3, -0.8, 0.2 + 0.5j, -0.7j])
def test_drift_spectrum_closed_form(xi):
    model = qs.CorrelatedBathOscillators(
        omega=(1.0, 1.2), g=0.04, gamma=0.5, xi=0.0, n_th=(0.3, 1.0)
    )
    lam = np.asarray(qs.drift_spectrum(model, xi))
    g12 = float(model.gamma12)
    block_a = closed_form_eigenvalues((1.0, 1.2), 0.04, 0.5, xi, g12)
    # ⟨a†⟩ block: ih − ½G(ξ), i.e. the ⟨a⟩ block with ω → −ω and g → −g.
    block_b = closed_form_eigenvalues((-1.0, -1.2), -0.04, 0.5, xi, g12)
    np.testing.assert_allclose(lam, as_sorted(np.concatenate([block_a, block_b])), atol=1e-12)
    if np.isreal(xi):  # the physical drift: real, so its spectrum is closed under conjugation
        physical = eqx.tree_at(lambda m: m.xi, model, jnp.asarray(xi))
        np.testing.assert_allclose(
            lam, as_sorted(np.linalg.eigvals(np.asarray(physical.drift_matrix()))), atol=1e-13
        )
        np.testing.assert_allclose(lam, as_sorted(np.conj(lam)), atol=1e-13)


def test_drift_spectrum_defaults_to_model_xi_and_batches():
    model = model_of(CASES[1])
    np.testing.assert_allclose(
        qs.drift_spectrum(model), as_sorted(np.linalg.eigvals(np.asarray(model.drift_matrix()))),
        atol=1e-14,
    )
    xis = np.array([[0.1, 0.2j], [-0.5, 1.0 + 1.0j]])
    batched = qs.drift_spectrum(model, xis)
    assert batched.shape == (2, 2, 4)
    np.testing.assert_allclose(batched[1, 1], qs.drift_spectrum(model, xis[1, 1]), atol=1e-15)
    with pytest.raises(ValueError, match="xi"):
        qs.drift_spectrum(model, np.array([np.nan]))


def test_exceptional_point_on_real_axis_at_xi_crit():
    """g = 0: the frequencies of the two normal modes coalesce at ξ_crit = δ/γ₁₂ (Fig. 1a–b).

    Located by brute force on a fine grid of real ξ (the last ξ where Im λ still differ) and by
    :func:`exceptional_points`; γ₁₂ = γ at T = 0, γ₁₂ > γ for n̄₁ ≠ n̄₂.
    """
    for n_th in [(0.0, 0.0), (0.5, 1.5)]:
        model = qs.CorrelatedBathOscillators(omega=(1.2, 1.0), g=0.0, gamma=0.5, xi=0.0, n_th=n_th)
        xi_crit = 0.2 / float(model.gamma12)
        lo, hi = 0.0, 1.0
        for _ in range(2):  # a coarse grid, then a fine one inside the bracket: resolution 1e-6
            grid = np.linspace(lo, hi, 1001)
            lam = np.asarray(qs.drift_spectrum(model, grid))
            split = lam[:, 1].imag - lam[:, 0].imag  # the two negative frequencies
            k = np.argmax(split < 1e-7)
            lo, hi = grid[k - 1], grid[k]
        assert hi == pytest.approx(xi_crit, abs=2e-6)
        eps = np.asarray(qs.exceptional_points(model))
        np.testing.assert_allclose(eps, [-xi_crit, -xi_crit, xi_crit, xi_crit], atol=1e-12)


@pytest.mark.parametrize("g, delta", [(0.02, 0.2), (0.04, 0.2), (-0.05, 0.3)])
def test_exceptional_points_off_the_real_axis(g, delta):
    """For g ≠ 0 the EPs sit at ξ = (±δ ± 2ig)/γ₁₂ — off the imaginary axis unless δ = 0 (the
    paper places them on the imaginary axis for all g). At each, A(ξ) is defective."""
    model = qs.CorrelatedBathOscillators(omega=(1.0 + delta, 1.0), g=g, gamma=0.5, xi=0.0,
                                         n_th=(0.2, 0.0))
    g12 = float(model.gamma12)
    eps = np.asarray(qs.exceptional_points(model))
    expected = np.array([(s * delta + t * 2j * g) / g12 for s in (-1, 1) for t in (-1, 1)])
    expected = expected[np.lexsort((expected.imag, expected.real))]
    np.testing.assert_allclose(eps, expected, atol=1e-12)
    assert np.all(np.abs(eps.real) > 0.1)  # not on the imaginary axis
    for xi in eps:
        A = np.asarray(model._drift_at(jnp.asarray(xi)))
        lam = np.linalg.eigvals(A)
        gaps = np.abs(lam[:, None] - lam[None, :]) + np.eye(4)
        assert gaps.min() < 1e-6  # a coalescing pair (√ε-accurate at a defective eigenvalue)
        _, vectors = np.linalg.eig(A)
        assert np.linalg.cond(vectors) > 1e6  # defective: eigenvectors coalesce too


# ---------------------------------------------------------------------- phase-locking value


KEY = jax.random.PRNGKey(3)


def test_plv_closed_form_free_detuned_oscillators():
    """ξ = g = 0: Δφ = Δθ − δt, so PLV = ⟨sin(Δθ − δt₁) − sin(Δθ − δt₂)⟩ / (δ(t₂ − t₁))."""
    model = qs.CorrelatedBathOscillators(omega=(1.0, 1.3), g=0.0, gamma=0.1, xi=0.0)
    t1, t2, n = 5.0, 60.0, 200
    theta = np.asarray(jax.random.uniform(KEY, (n, 2), jnp.float64, 0.0, 2 * np.pi))
    d, delta = theta[:, 0] - theta[:, 1], -0.3
    expected = np.mean((np.sin(d - delta * t1) - np.sin(d - delta * t2)) / (delta * (t2 - t1)))
    value = qs.phase_locking_value(model, KEY, t1=t1, t2=t2, n_samples=n, n_panels=16)
    assert float(value) == pytest.approx(expected, abs=1e-13)


@pytest.mark.parametrize("xi", [-1.0, -0.6, 0.45, 1.0])
def test_plv_locked_beyond_the_exceptional_point(xi):
    """g = 0, |ξ| > ξ_crit: the slow normal mode fixes cos Δφ = −sign(ξ)√(1 − ξ_crit²/ξ²)
    (ξ = −1 in phase, ξ = +1 anti-phase on resonance); within |ξ| < ξ_crit the PLV averages out."""
    model = qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.0, gamma=0.5, xi=xi)
    value = qs.phase_locking_value(model, KEY, t1=200.0, t2=2000.0, n_samples=256)
    assert float(value) == pytest.approx(-np.sign(xi) * np.sqrt(1 - 0.4**2 / xi**2), abs=1e-6)
    inside = eqx.tree_at(lambda m: m.xi, model, jnp.asarray(0.2))
    value = qs.phase_locking_value(inside, KEY, t1=200.0, t2=20000.0, n_samples=256, n_panels=4096)
    assert abs(float(value)) < 2e-3


def test_plv_vmap_matches_loop_and_grad_matches_finite_differences():
    def plv(xi):
        model = qs.CorrelatedBathOscillators(omega=(1.0, 1.1), g=0.05, gamma=0.3, xi=xi)
        return qs.phase_locking_value(model, KEY, t1=5.0, t2=40.0, n_samples=32, n_panels=32)

    xis = jnp.asarray([-0.8, -0.2, 0.5])
    np.testing.assert_allclose(jax.vmap(plv)(xis), [plv(x) for x in xis], rtol=1e-12)
    grad = jax.grad(plv)(jnp.asarray(0.5))
    assert float(grad) == pytest.approx(float(finite_difference_grad(plv, 0.5, h=1e-5)), rel=1e-6)


@pytest.mark.parametrize("g", [0.0, 0.1])
def test_diabolic_not_exceptional_on_resonance(g):
    """δ = 0: the degeneracies at ξ = ±2ig/γ₁₂ are diabolic (the block is ∝ I), not EPs."""
    model = qs.CorrelatedBathOscillators(omega=1.0, g=g, gamma=0.5, xi=0.0, n_th=(0.2, 0.0))
    g12 = float(model.gamma12)
    eps = np.asarray(qs.exceptional_points(model))
    np.testing.assert_allclose(np.sort(eps.imag), [-2 * g / g12] * 2 + [2 * g / g12] * 2, atol=1e-7)
    np.testing.assert_allclose(eps.real, 0.0, atol=1e-7)
    for xi in (-2j * g / g12, 2j * g / g12):
        _, vectors = np.linalg.eig(np.asarray(model._drift_at(jnp.asarray(xi))))
        assert np.linalg.cond(vectors) < 10


def test_plv_bad_input():
    model = model_of(CASES[0])
    for kwargs, name in [
        (dict(t1=1.0, t2=2.0, n_samples=0), "n_samples"),
        (dict(t1=2.0, t2=2.0), "t2"),
        (dict(t1=3.0, t2=2.0), "t2"),
        (dict(t1=0.0, t2=np.inf), "t2"),
        (dict(t1=0.0, t2=1.0, modes=(0, 0)), "modes"),
        (dict(t1=0.0, t2=1.0, n_panels=0), "n_panels"),
    ]:
        with pytest.raises(ValueError, match=name):
            qs.phase_locking_value(model, KEY, **kwargs)
    pair = qs.optomechanical_pair(**qs.MARI2013_FIG2)
    with pytest.raises(ValueError, match="linear model"):
        qs.phase_locking_value(pair, KEY, t1=0.0, t2=1.0)


# ------------------------------------------------------------------ input checks, transforms


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(xi=1.5), "xi"),
        (dict(xi=-1.01), "xi"),
        (dict(gamma=-1e-9), "gamma"),  # rates are ≥ 0 (γ = 0, a closed pair, is allowed)
        (dict(gamma=-0.1), "gamma"),
        (dict(n_th=(-0.1, 0.0)), "n_th"),
        (dict(omega=(1.0, np.nan)), "omega"),
        (dict(g=np.inf), "g"),
        (dict(xi=np.nan), "xi"),
        (dict(omega=(1.0, 1.0, 1.0)), "omega"),
        (dict(g=(0.1, 0.2)), "g"),
        (dict(xi=0.5j), "xi"),
    ],
)
def test_bad_parameters_raise(kwargs, name):
    params = dict(omega=(1.0, 1.2), g=0.1, gamma=0.5, xi=0.5, n_th=(0.0, 0.0)) | kwargs
    with pytest.raises(ValueError, match=name):
        qs.CorrelatedBathOscillators(**params)


def test_parameters_are_float_leaves_and_broadcast():
    model = qs.CorrelatedBathOscillators(omega=1, g=0, gamma=1, xi=0, n_th=2)
    assert model.omega.shape == (2,) and model.n_th.shape == (2,)
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree_util.tree_leaves(model))
    np.testing.assert_array_equal(model.bath_occupations(), [2.0, 2.0])
    assert model.n_modes == 2


def test_steady_state_jit_vmap_grad():
    """jit == no-jit, vmap over ξ == loop, d I₂/dξ == central finite differences."""

    def build(xi):
        return qs.CorrelatedBathOscillators(
            omega=(1.0, 1.1), g=0.2, gamma=0.3, xi=xi, n_th=(0.2, 1.0)
        )

    xis = jnp.linspace(-0.6, 0.6, 7)
    batched = jax.vmap(lambda x: qs.steady_state(build(x)).cov)(xis)
    for k, x in enumerate(xis):
        np.testing.assert_allclose(
            batched[k], qs.steady_state(build(x)).cov, rtol=1e-13, atol=1e-15
        )
    np.testing.assert_allclose(
        jax.jit(lambda x: qs.steady_state(build(x)).cov)(0.3), qs.steady_state(build(0.3)).cov,
        rtol=1e-13,
    )

    def mutual_information(xi):
        return qs.mutual_information(qs.steady_state(build(xi)).cov, kind="renyi2")

    def richardson(x, h=1e-3):
        """Central differences at h and h/2, extrapolated: error O(h⁴), little rounding noise
        (plain central differences at h = 1e-6 carry ~1e-7 relative noise at x = 0.1)."""
        coarse, fine = (finite_difference_grad(mutual_information, x, h=k) for k in (h, h / 2))
        return (4.0 * fine - coarse) / 3.0

    for x in (-0.4, 0.1, 0.5):
        grad = jax.grad(mutual_information)(jnp.asarray(x))
        assert float(grad) == pytest.approx(float(richardson(x)), rel=1e-9)


def test_sweep_over_xi_reports_missing_steady_states():
    """A sweep of the steady state over ξ runs through the dark mode without aborting."""
    base = qs.CorrelatedBathOscillators(omega=1.0, g=0.1, gamma=0.2, xi=0.0, n_th=0.3)
    xis = jnp.linspace(-1.0, 1.0, 9)
    models = jax.vmap(lambda x: eqx.tree_at(lambda m: m.xi, base, x))(xis)
    sol = jax.vmap(lambda m: qs.solve_steady_state(m, throw=False))(models)
    names = qs.status_names(sol.status)
    assert list(names) == ["no_steady_state"] + ["success"] * 7 + ["no_steady_state"]
    np.testing.assert_allclose(sol.state.cov[1:-1], np.broadcast_to(0.8 * np.eye(4), (7, 4, 4)),
                               atol=1e-13)
