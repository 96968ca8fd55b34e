"""Gaussian-state toolkit: closed forms, thewalrus, QuTiP, brute-force discord, transformations.

Every analytic reference used here is listed in tests/README.md ("Gaussian toolkit references").
Random states are S (⊕ thermal) Sᵀ with S = exp(ΩH) symplectic, drawn by hypothesis.
"""

import re

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import qutip
from helpers import finite_difference_grad, tree_allclose
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm
from scipy.optimize import minimize
from scipy.stats import multivariate_normal
from thewalrus.decompositions import symplectic_eigenvals as tw_symplectic_eigenvals
from thewalrus.quantum import log_negativity as tw_log_negativity
from thewalrus.quantum import vonneumann_entropy as tw_vonneumann_entropy
from thewalrus.symplectic import xpxp_to_xxpp

import qsync_jax as qs
from qsync_jax._gaussian import _LOG_FLOOR

TOL = dict(rtol=1e-10, atol=1e-10)
SETTINGS = settings(max_examples=12, deadline=None)


# ------------------------------------------------------------------------------------- references


def omega(n):
    return np.kron(np.eye(n), np.array([[0.0, 1.0], [-1.0, 0.0]]))


def symplectic(h, scale):
    """exp(Ω H) with H the symmetric part of ``h``: a symplectic matrix."""
    n = h.shape[0] // 2
    return expm(omega(n) @ (h + h.T) * (0.5 * scale))


def make_cov(s, nbar):
    cov = s @ np.diag(np.repeat(np.asarray(nbar) + 0.5, 2)) @ s.T
    return 0.5 * (cov + cov.T)


@st.composite
def physical_covs(draw, n_modes, max_nbar=2.0):
    dim = 2 * n_modes
    h = draw(hnp.arrays(np.float64, (dim, dim), elements=st.floats(-1.0, 1.0)))
    scale = draw(st.floats(0.05, 0.7))
    nbar = draw(hnp.arrays(np.float64, (n_modes,), elements=st.floats(0.0, max_nbar)))
    return make_cov(symplectic(h, scale), nbar)


local_symplectics = hnp.arrays(np.float64, (2, 2), elements=st.floats(-1.0, 1.0)).map(
    lambda h: symplectic(h, 0.8)
)


def random_cov(seed, n_modes, nbar_range=(0.1, 1.5), scale=0.5):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(2 * n_modes, 2 * n_modes))
    return make_cov(symplectic(h, scale), rng.uniform(*nbar_range, n_modes))


def entangled_cov(seed):
    """Two-mode squeezed thermal state (r = 0.6, n̄ = 0.2) under random local symplectics."""
    rng = np.random.default_rng(seed)
    s = np.zeros((4, 4))
    s[:2, :2] = symplectic(rng.normal(size=(2, 2)), 0.5)
    s[2:, 2:] = symplectic(rng.normal(size=(2, 2)), 0.5)
    return s @ np.asarray(qs.two_mode_squeezed(0.6, 0.2).cov) @ s.T


def f_vn(nu):
    """(ν+½) ln(ν+½) − (ν−½) ln(ν−½), with 0 ln 0 = 0."""
    return (nu + 0.5) * np.log(nu + 0.5) - (0.0 if nu <= 0.5 else (nu - 0.5) * np.log(nu - 0.5))


def numpy_symplectic_eigenvalues(cov):
    n = len(cov) // 2
    return np.sort(np.abs(np.linalg.eigvals(1j * omega(n) @ cov)))[::2]


def to_thewalrus(cov):
    """ħ = 2 and xxpp ordering: vacuum I, covariance 2C."""
    return xpxp_to_xxpp(2.0 * np.asarray(cov))


def conditional_dets(cov, theta, lam):
    """det ε for seeds Γ = ½ R(θ) diag(λ, 1/λ) R(θ)ᵀ on mode b (λ = 0: homodyne), vectorized.

    (B + Γ)⁻¹ = R N Rᵀ / den with K = Rᵀ B R, N = [[2λK₂₂ + 1, −2λK₁₂], [−2λK₁₂, 2λK₁₁ + λ²]],
    den = (K₁₁ + λ/2)(2λK₂₂ + 1) − 2λK₁₂², continuous at λ = 0.
    """
    a, b, x = cov[:2, :2], cov[2:, 2:], cov[:2, 2:]
    c, s = np.cos(theta), np.sin(theta)
    rot = np.moveaxis(np.array([[c, -s], [s, c]]), (0, 1), (-2, -1))
    k = np.swapaxes(rot, -1, -2) @ b @ rot
    k11, k12, k22 = k[..., 0, 0], k[..., 0, 1], k[..., 1, 1]
    n = np.moveaxis(
        np.array([[2 * lam * k22 + 1, -2 * lam * k12], [-2 * lam * k12, 2 * lam * k11 + lam**2]]),
        (0, 1),
        (-2, -1),
    )
    den = (k11 + lam / 2) * (2 * lam * k22 + 1) - 2 * lam * k12**2
    eps = a - x @ rot @ (n / den[..., None, None]) @ np.swapaxes(rot, -1, -2) @ x.T
    return np.linalg.det(eps)


def brute_force_min_det(cov):
    """min det ε over all pure Gaussian seeds: θ ∈ [0, π), λ ∈ [0, 1] covers them all."""
    theta, lam = np.meshgrid(np.linspace(0, np.pi, 64, endpoint=False), np.linspace(0, 1, 33))
    vals = conditional_dets(cov, theta, lam)
    best = np.inf
    for idx in np.argsort(vals, axis=None)[:3]:
        start = [theta.flat[idx], lam.flat[idx]]
        res = minimize(
            lambda v: conditional_dets(cov, v[0], v[1]),
            start,
            method="L-BFGS-B",
            bounds=[(None, None), (0.0, 1.0)],
            options=dict(ftol=1e-16, gtol=1e-13, maxiter=500),
        )
        best = min(best, res.fun, vals.flat[idx])
    return best


def brute_force_discord(cov, kind):
    cov = np.asarray(cov)
    e = brute_force_min_det(cov)
    det_b = np.linalg.det(cov[2:, 2:])
    if kind == "renyi2":  # S₂(b) − S₂(ab) + S₂(a|Π) with S₂ = ½ ln det 2C
        return 0.5 * (np.log(4 * det_b) - np.log(16 * np.linalg.det(cov)) + np.log(4 * e))
    nus = numpy_symplectic_eigenvalues(cov)
    return f_vn(np.sqrt(det_b)) - sum(f_vn(nu) for nu in nus) + f_vn(np.sqrt(e))


def adesso_datta_printed(cov, kind):
    """The printed formulas, verbatim in the papers' vacuum-1 units (σ = 2C)."""
    sigma = 2.0 * np.asarray(cov)
    a_, b_ = np.linalg.det(sigma[:2, :2]), np.linalg.det(sigma[2:, 2:])
    c_, d_ = np.linalg.det(sigma[:2, 2:]), np.linalg.det(sigma)
    if (d_ - a_ * b_) ** 2 <= (1 + b_) * c_**2 * (a_ + d_):
        root = np.sqrt(max(c_**2 + (b_ - 1) * (d_ - a_), 0.0))
        e_min = (2 * c_**2 + (b_ - 1) * (d_ - a_) + 2 * abs(c_) * root) / (b_ - 1) ** 2
    else:
        root = np.sqrt(max(c_**4 + (d_ - a_ * b_) ** 2 - 2 * c_**2 * (a_ * b_ + d_), 0.0))
        e_min = (a_ * b_ - c_**2 + d_ - root) / (2 * b_)
    if kind == "renyi2":  # AGS 2012: ½ ln det β − ½ ln det σ + ½ ln inf det ε
        return 0.5 * (np.log(b_) - np.log(d_) + np.log(e_min))

    def f(x):  # Adesso–Datta's f in vacuum-1 units
        return (x + 1) / 2 * np.log((x + 1) / 2) - (x - 1) / 2 * np.log(max((x - 1) / 2, 1e-300))

    delta = a_ + b_ + 2 * c_
    nu_p2 = (delta + np.sqrt(delta**2 - 4 * d_)) / 2
    nu_m2 = d_ / nu_p2
    return f(np.sqrt(b_)) - f(np.sqrt(nu_m2)) - f(np.sqrt(nu_p2)) + f(np.sqrt(e_min))


def printed_branch(cov):
    sigma = 2.0 * np.asarray(cov)
    a_, b_ = np.linalg.det(sigma[:2, :2]), np.linalg.det(sigma[2:, 2:])
    c_, d_ = np.linalg.det(sigma[:2, 2:]), np.linalg.det(sigma)
    return (d_ - a_ * b_) ** 2 <= (1 + b_) * c_**2 * (a_ + d_)


# ------------------------------------------------------------------------------------ closed forms


@pytest.mark.parametrize("n", [1, 2, 3])
def test_vacuum(n):
    state = qs.vacuum(n)
    assert state.n_modes == n
    np.testing.assert_array_equal(state.cov, 0.5 * np.eye(2 * n))
    np.testing.assert_array_equal(state.mean, np.zeros(2 * n))
    np.testing.assert_allclose(qs.symplectic_eigenvalues(state.cov), 0.5, **TOL)
    np.testing.assert_allclose(qs.von_neumann_entropy(state), 0.0, atol=1e-12)
    np.testing.assert_allclose(qs.renyi2_entropy(state), 0.0, atol=1e-14)
    np.testing.assert_allclose(qs.purity(state), 1.0, **TOL)
    assert qs.is_physical(state.cov)
    if n >= 2:
        for fn in (qs.log_negativity, qs.mutual_information, qs.gaussian_discord):
            np.testing.assert_allclose(fn(state.cov), 0.0, atol=1e-12)
        for fn in (qs.mutual_information, qs.gaussian_discord):
            np.testing.assert_allclose(fn(state.cov, kind="renyi2"), 0.0, atol=1e-12)


def test_thermal_closed_forms():
    nbar = np.array([0.0, 1e-3, 0.7, 3.0, 50.0])
    cov = qs.thermal(nbar).cov
    np.testing.assert_allclose(cov, np.diag(np.repeat(nbar + 0.5, 2)), rtol=1e-15)
    np.testing.assert_allclose(qs.symplectic_eigenvalues(cov), np.sort(nbar) + 0.5, **TOL)
    entropy = sum((m + 1) * np.log(m + 1) - (m * np.log(m) if m > 0 else 0.0) for m in nbar)
    np.testing.assert_allclose(qs.von_neumann_entropy(cov), entropy, **TOL)
    np.testing.assert_allclose(qs.renyi2_entropy(cov), np.sum(np.log(2 * nbar + 1)), **TOL)
    np.testing.assert_allclose(qs.purity(cov), np.prod(1 / (2 * nbar + 1)), **TOL)
    for m in nbar:  # one mode at a time: the n = 1 closed form of ν
        one = qs.thermal(m).cov
        expected = (m + 1) * np.log(m + 1) - (m * np.log(m) if m > 0 else 0.0)
        np.testing.assert_allclose(qs.von_neumann_entropy(one), expected, **TOL)


@pytest.mark.parametrize("r", [0.1, 0.5, 1.3])
def test_two_mode_squeezed_vacuum(r):
    cov = qs.two_mode_squeezed(r).cov
    ch2, sh2 = np.cosh(r) ** 2, np.sinh(r) ** 2
    s_a = ch2 * np.log(ch2) - sh2 * np.log(sh2)
    assert qs.is_physical(cov)
    np.testing.assert_allclose(qs.symplectic_eigenvalues(cov), [0.5, 0.5], **TOL)
    np.testing.assert_allclose(qs.purity(cov), 1.0, **TOL)
    np.testing.assert_allclose(qs.von_neumann_entropy(cov), 0.0, atol=1e-10)
    np.testing.assert_allclose(qs.log_negativity(cov), 2 * r, **TOL)
    np.testing.assert_allclose(qs.log_negativity(cov, a=1, b=0), 2 * r, **TOL)
    for mode in (0, 1):
        np.testing.assert_allclose(qs.von_neumann_entropy(qs.reduce(cov, (mode,))), s_a, **TOL)
    np.testing.assert_allclose(qs.mutual_information(cov), 2 * s_a, **TOL)
    log_ch = np.log(np.cosh(2 * r))  # S₂ of either mode
    np.testing.assert_allclose(qs.mutual_information(cov, kind="renyi2"), 2 * log_ch, **TOL)
    for a, b in ((0, 1), (1, 0)):  # pure state: discord = entanglement entropy
        np.testing.assert_allclose(qs.gaussian_discord(cov, a, b), s_a, **TOL)
        np.testing.assert_allclose(qs.gaussian_discord(cov, a, b, kind="renyi2"), log_ch, **TOL)


@pytest.mark.parametrize(("r", "nbar"), [(0.3, 0.2), (0.3, 1.0), (1.1, 0.5)])
def test_two_mode_squeezed_thermal(r, nbar):
    cov = qs.two_mode_squeezed(r, nbar).cov
    np.testing.assert_allclose(qs.symplectic_eigenvalues(cov), [nbar + 0.5] * 2, **TOL)
    expected = max(0.0, 2 * r - np.log(2 * nbar + 1))  # ν̃₋ = (n̄ + ½) e^(−2r)
    np.testing.assert_allclose(qs.log_negativity(cov), expected, **TOL)


@given(physical_covs(3))
@SETTINGS
def test_renyi2_is_half_log_det(cov):
    np.testing.assert_allclose(qs.renyi2_entropy(cov), 0.5 * np.log(np.linalg.det(2 * cov)), **TOL)
    np.testing.assert_allclose(qs.purity(cov), 1 / np.sqrt(np.linalg.det(2 * cov)), **TOL)
    nus = numpy_symplectic_eigenvalues(cov)
    np.testing.assert_allclose(qs.renyi2_entropy(cov), np.sum(np.log(2 * nus)), **TOL)


def test_coherent_mean_matches_qutip():
    alpha = np.array([0.5 + 0.2j, -1.1 + 0.7j])
    state = qs.coherent(alpha)
    n_fock = 30
    a = qutip.destroy(n_fock)
    x, p = (a + a.dag()) / np.sqrt(2), (a - a.dag()) / (1j * np.sqrt(2))
    expected = [qutip.expect(op, qutip.coherent(n_fock, al)).real for al in alpha for op in (x, p)]
    np.testing.assert_allclose(state.mean, expected, **TOL)
    np.testing.assert_array_equal(state.cov, 0.5 * np.eye(4))
    batched = qs.coherent(np.stack([alpha, 2 * alpha]))
    assert batched.mean.shape == (2, 4) and batched.cov.shape == (2, 4, 4)


def test_single_mode_state_matches_qutip():
    """Displaced squeezed thermal state built in Fock space: covariance, entropy, purity, Wigner."""
    n_fock = 60
    a = qutip.destroy(n_fock)
    squeeze = qutip.squeeze(n_fock, 0.4 * np.exp(0.6j))
    shift = qutip.displace(n_fock, 0.5 + 0.2j)
    rho = shift * squeeze * qutip.thermal_dm(n_fock, 0.3) * squeeze.dag() * shift.dag()
    u = [(a + a.dag()) / np.sqrt(2), (a - a.dag()) / (1j * np.sqrt(2))]
    mean = np.array([qutip.expect(op, rho).real for op in u])
    second = [[qutip.expect(u[i] * u[j] + u[j] * u[i], rho).real for j in (0, 1)] for i in (0, 1)]
    cov = 0.5 * np.array(second) - np.outer(mean, mean)
    np.testing.assert_allclose(qs.von_neumann_entropy(cov), qutip.entropy_vn(rho), **TOL)
    np.testing.assert_allclose(qs.purity(cov), (rho * rho).tr().real, **TOL)
    np.testing.assert_allclose(qs.symplectic_eigenvalues(cov), [0.3 + 0.5], **TOL)
    xs, ps = np.linspace(-3, 3, 13), np.linspace(-2.5, 2.5, 11)
    w = qs.wigner(qs.GaussianState(mean=jnp.asarray(mean), cov=jnp.asarray(cov)), xs, ps)
    assert w.shape == (len(ps), len(xs))
    np.testing.assert_allclose(w, qutip.wigner(rho, xs, ps), rtol=1e-10, atol=1e-12)


def test_two_mode_wigner_matches_multivariate_normal():
    cov, mean = random_cov(0, 2), np.array([0.3, -0.2, 1.0, 0.4])
    state = qs.GaussianState(mean=jnp.asarray(mean), cov=jnp.asarray(cov))
    x1, p1, x2, p2 = (np.linspace(-2, 2, k) for k in (5, 4, 3, 6))
    w = qs.wigner(state, x1, p1, x2, p2)
    assert w.shape == (4, 5, 6, 3)  # (p1, x1, p2, x2)
    pts = np.stack(np.meshgrid(x1, p1, x2, p2, indexing="ij"), -1)  # (x1, p1, x2, p2) axes
    expected = multivariate_normal(mean, cov).pdf(pts).transpose(1, 0, 3, 2)
    np.testing.assert_allclose(w, expected, rtol=1e-10, atol=1e-14)
    flipped = qs.GaussianState(mean=-state.mean, cov=state.cov)
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), state, flipped)
    wb = qs.wigner(batch, x1, p1, x2, p2)
    assert wb.shape == (2, 4, 5, 6, 3)
    assert tree_allclose(wb[0], w) and tree_allclose(wb[1], qs.wigner(flipped, x1, p1, x2, p2))
    marginal = qs.reduce(state, 1)  # normalization, on a grid of ±12 standard deviations
    xs, ps = (
        m + np.linspace(-12, 12, 201) * np.sqrt(marginal.cov[k, k])
        for k, m in enumerate(marginal.mean)
    )
    w1 = qs.wigner(marginal, xs, ps)
    np.testing.assert_allclose(np.trapezoid(np.trapezoid(w1, xs), ps), 1.0, rtol=1e-9)


# ------------------------------------------------------------- random states vs independent codes


@given(st.sampled_from([1, 2, 3]).flatmap(physical_covs))
@SETTINGS
def test_symplectic_eigenvalues_and_entropy_match_thewalrus(cov):
    cov_tw = to_thewalrus(cov)
    expected = np.sort(tw_symplectic_eigenvals(cov_tw)) / 2  # ħ = 2: ν_tw = 2ν
    np.testing.assert_allclose(qs.symplectic_eigenvalues(cov), expected, **TOL)
    nus = numpy_symplectic_eigenvalues(cov)
    entropy = sum(f_vn(nu) for nu in nus)
    np.testing.assert_allclose(qs.von_neumann_entropy(cov), entropy, **TOL)
    if np.all(nus > 0.5 + 1e-4):  # thewalrus drops the ν within 1e-5 of ½ (ħ = 2: of 1)
        np.testing.assert_allclose(entropy, tw_vonneumann_entropy(cov_tw, hbar=2), **TOL)
    assert qs.is_physical(cov)


@given(physical_covs(2))
@SETTINGS
def test_log_negativity_matches_thewalrus_two_modes(cov):
    expected = tw_log_negativity(to_thewalrus(cov), modes_A=[0], hbar=2)
    np.testing.assert_allclose(qs.log_negativity(cov), expected, **TOL)


@given(physical_covs(3))
@SETTINGS
def test_log_negativity_matches_thewalrus_three_modes(cov):
    cov_tw = to_thewalrus(cov)
    for a, b in (((0,), (1, 2)), ((1,), (0, 2)), ((0, 2), (1,))):
        expected = tw_log_negativity(cov_tw, modes_A=list(a), hbar=2)
        np.testing.assert_allclose(qs.log_negativity(cov, a, b), expected, **TOL)
        np.testing.assert_allclose(qs.log_negativity(cov, b, a), expected, **TOL)
    # a | b not covering all modes: the reduced state, through thewalrus on the sliced covariance
    idx = [0, 1, 4, 5]
    expected = tw_log_negativity(to_thewalrus(cov[np.ix_(idx, idx)]), modes_A=[0], hbar=2)
    np.testing.assert_allclose(qs.log_negativity(cov, (0,), (2,)), expected, **TOL)


@given(physical_covs(2), local_symplectics, local_symplectics)
@SETTINGS
def test_local_symplectic_invariance(cov, s_a, s_b):
    s = np.zeros((4, 4))
    s[:2, :2], s[2:, 2:] = s_a, s_b
    moved = s @ cov @ s.T
    functions = [
        qs.symplectic_eigenvalues,
        qs.von_neumann_entropy,
        qs.renyi2_entropy,
        qs.log_negativity,
        qs.mutual_information,
        lambda c: qs.mutual_information(c, kind="renyi2"),
        qs.gaussian_discord,
        lambda c: qs.gaussian_discord(c, 1, 0),
        lambda c: qs.gaussian_discord(c, kind="renyi2"),
        lambda c: qs.von_neumann_entropy(qs.reduce(c, 0)),
    ]
    for fn in functions:
        np.testing.assert_allclose(fn(moved), fn(cov), **TOL)


@given(
    physical_covs(3), local_symplectics, hnp.arrays(np.float64, (4, 4), elements=st.floats(-1, 1))
)
@SETTINGS
def test_local_invariance_three_modes(cov, s_0, h_b):
    s = np.zeros((6, 6))
    s[:2, :2] = s_0
    s[2:, 2:] = symplectic(h_b, 0.4)  # a two-mode symplectic map on b = (1, 2)
    moved = s @ cov @ s.T
    for fn in (qs.log_negativity, qs.mutual_information):
        np.testing.assert_allclose(fn(moved, (0,), (1, 2)), fn(cov, (0,), (1, 2)), **TOL)


@pytest.mark.parametrize("kind", ["von_neumann", "renyi2"])
@given(cov=physical_covs(2))
@settings(max_examples=8, deadline=None)
def test_discord_matches_brute_force_minimization(kind, cov):
    np.testing.assert_allclose(
        qs.gaussian_discord(cov, kind=kind), brute_force_discord(cov, kind), **TOL
    )


DISCORD_STATES = [random_cov(seed, 2, (0.0, 2.0), 0.8) for seed in range(40)]


@pytest.mark.parametrize("kind", ["von_neumann", "renyi2"])
def test_discord_matches_printed_closed_forms(kind):
    """Adesso & Datta (2010) / Adesso, Girolami & Serafini (2012) as printed, both branches."""
    branches = {printed_branch(cov) for cov in DISCORD_STATES}
    assert branches == {True, False}
    for cov in DISCORD_STATES:
        expected = adesso_datta_printed(cov, kind)
        np.testing.assert_allclose(qs.gaussian_discord(cov, kind=kind), expected, **TOL)


@pytest.mark.parametrize("seed", [1, 2])
def test_discord_near_pure_measured_mode(seed):
    """b nearly pure (n̄_b = 1e-9) and weakly correlated: compared with brute force."""
    rng = np.random.default_rng(seed)
    theta = 0.5 * np.sqrt(1e-9)
    c, s = np.cos(theta), np.sin(theta)
    beam_splitter = np.block([[c * np.eye(2), s * np.eye(2)], [-s * np.eye(2), c * np.eye(2)]])
    local = np.zeros((4, 4))
    local[:2, :2] = symplectic(rng.normal(size=(2, 2)), 0.5)
    local[2:, 2:] = symplectic(rng.normal(size=(2, 2)), 0.5)
    cov = make_cov(local @ beam_splitter, [0.8, 1e-9])
    for kind in ("von_neumann", "renyi2"):
        expected = brute_force_discord(cov, kind)
        np.testing.assert_allclose(
            qs.gaussian_discord(cov, kind=kind), expected, rtol=1e-8, atol=1e-13
        )


def test_discord_bounds_and_product_states():
    for cov in DISCORD_STATES[:10]:
        d2 = qs.gaussian_discord(cov, kind="renyi2")
        assert -1e-12 <= d2 <= qs.mutual_information(cov, kind="renyi2") + 1e-12
        assert -1e-12 <= qs.gaussian_discord(cov) <= qs.mutual_information(cov) + 1e-12
    product = np.zeros((4, 4))
    product[:2, :2], product[2:, 2:] = random_cov(3, 1), random_cov(4, 1)
    for kind in ("von_neumann", "renyi2"):
        np.testing.assert_allclose(qs.gaussian_discord(product, kind=kind), 0.0, atol=1e-12)


@given(physical_covs(3))
@SETTINGS
def test_mutual_information_of_three_modes(cov):
    nu = lambda c: numpy_symplectic_eigenvalues(c)  # noqa: E731
    entropy = lambda c: sum(f_vn(x) for x in nu(c))  # noqa: E731
    a, b = [0, 1], [4, 5]
    expected = entropy(cov[np.ix_(a, a)]) + entropy(cov[np.ix_(b, b)])
    expected -= entropy(cov[np.ix_(a + b, a + b)])
    np.testing.assert_allclose(qs.mutual_information(cov, 0, 2), expected, **TOL)
    ab = [0, 1, 2, 3, 4, 5]
    det = lambda i: np.linalg.det(cov[np.ix_(i, i)])  # noqa: E731
    expected2 = 0.5 * np.log(det([0, 1]) * det([2, 3, 4, 5]) / det(ab))
    np.testing.assert_allclose(
        qs.mutual_information(cov, 0, (1, 2), kind="renyi2"), expected2, **TOL
    )


# ------------------------------------------------------------- jit, vmap, grad (and awkward points)


SCALAR_FUNCTIONS = {
    "sum_symplectic_eigenvalues": lambda c: jnp.sum(qs.symplectic_eigenvalues(c), -1),
    "purity": qs.purity,
    "von_neumann_entropy": qs.von_neumann_entropy,
    "renyi2_entropy": qs.renyi2_entropy,
    "mutual_information": qs.mutual_information,
    "mutual_information_renyi2": lambda c: qs.mutual_information(c, kind="renyi2"),
    "log_negativity": qs.log_negativity,
    "discord": qs.gaussian_discord,
    "discord_renyi2": lambda c: qs.gaussian_discord(c, kind="renyi2"),
}
THREE_MODE_FUNCTIONS = {
    "von_neumann_entropy": qs.von_neumann_entropy,
    "log_negativity": lambda c: qs.log_negativity(c, (0,), (1, 2)),
    "mutual_information": lambda c: qs.mutual_information(c, (0, 2), (1,)),
}
_VALUE_AND_GRAD = {}


def value_and_grad(fn):
    """Jitted (x, C) ↦ value and x-gradient of fn(C + (x + xᵀ)/2): one compilation per function."""
    if fn not in _VALUE_AND_GRAD:
        _VALUE_AND_GRAD[fn] = jax.jit(jax.value_and_grad(lambda x, c: fn(c + 0.5 * (x + x.T))))
    return _VALUE_AND_GRAD[fn]


def check_transformations(fn, covs):
    """jit == eager (with batch axes), vmap == loop, grad == central finite differences."""
    eager = np.array([fn(c) for c in covs])
    np.testing.assert_allclose(jax.jit(fn)(covs), eager, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(jax.vmap(fn)(covs), eager, rtol=1e-13, atol=1e-14)
    x0 = jnp.zeros_like(covs[0])
    vg = value_and_grad(fn)
    fd = finite_difference_grad(lambda x: vg(x, covs[0])[0], x0, h=1e-6)
    np.testing.assert_allclose(vg(x0, covs[0])[1], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", SCALAR_FUNCTIONS)
def test_jit_vmap_grad_two_modes(name):
    check_transformations(
        SCALAR_FUNCTIONS[name], jnp.asarray(np.stack([entangled_cov(seed) for seed in range(3)]))
    )


@pytest.mark.parametrize("name", THREE_MODE_FUNCTIONS)
def test_jit_vmap_grad_three_modes(name):
    c = np.zeros((6, 6))
    c[:4, :4], c[4:, 4:] = qs.two_mode_squeezed(0.5, 0.1).cov, 0.7 * np.eye(2)
    covs = []
    for seed in range(3):
        s = symplectic(np.random.default_rng(seed).normal(size=(6, 6)), 0.3)
        covs.append(s @ c @ s.T)
    check_transformations(THREE_MODE_FUNCTIONS[name], jnp.asarray(np.stack(covs)))


AWKWARD_TWO_MODE = {
    "vacuum": qs.vacuum(2).cov,
    "degenerate_thermal": qs.thermal(jnp.asarray([0.7, 0.7])).cov,
    "vacuum_x_thermal": qs.thermal(jnp.asarray([0.0, 1.3])).cov,
    "two_mode_squeezed_vacuum": qs.two_mode_squeezed(0.5).cov,
    "separable_two_mode_squeezed_thermal": qs.two_mode_squeezed(0.2, 0.5).cov,
}


@pytest.mark.parametrize("name", SCALAR_FUNCTIONS)
def test_gradients_finite_at_awkward_points(name):
    """Pure, product, separable and degenerate states: finite values and gradients."""
    vg = value_and_grad(SCALAR_FUNCTIONS[name])
    for state, cov in AWKWARD_TWO_MODE.items():
        value, grad = vg(jnp.zeros((4, 4)), cov)
        assert np.isfinite(value) and np.all(np.isfinite(grad)), state


@pytest.mark.parametrize("name", THREE_MODE_FUNCTIONS)
def test_gradients_finite_at_degenerate_three_mode_spectra(name):
    vg = value_and_grad(THREE_MODE_FUNCTIONS[name])
    for nbar in (0.0, 0.4):
        value, grad = vg(jnp.zeros((6, 6)), qs.thermal(jnp.full(3, nbar)).cov)
        assert np.isfinite(value) and np.all(np.isfinite(grad)), nbar


@pytest.mark.parametrize("name", ["von_neumann_entropy", "mutual_information", "log_negativity"])
def test_gradient_at_degenerate_spectrum_matches_finite_differences(name):
    """ν₁ = ν₂ (equal thermal modes mixed by a beam splitter): the gradient is well defined."""
    c, s = np.cos(0.4), np.sin(0.4)
    beam_splitter = np.block([[c * np.eye(2), s * np.eye(2)], [-s * np.eye(2), c * np.eye(2)]])
    for fn, cov in (
        (SCALAR_FUNCTIONS[name], jnp.asarray(make_cov(beam_splitter, [0.7, 0.7]))),
        (THREE_MODE_FUNCTIONS[name], qs.thermal(jnp.full(3, 0.4)).cov),
    ):
        nu = qs.symplectic_eigenvalues(cov)
        np.testing.assert_allclose(nu, np.full(len(nu), nu[0]), **TOL)
        vg = value_and_grad(fn)
        x0 = jnp.zeros_like(cov)
        fd = finite_difference_grad(lambda x: vg(x, cov)[0], x0, h=1e-6)
        np.testing.assert_allclose(vg(x0, cov)[1], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_entropy_gradient_at_pure_state_is_the_documented_value(n):
    """f'(½) = 1 − ln δ and d(Σν)/dC = ½·I at the vacuum, so dS/dC = ½ (1 − ln δ) I."""
    grad = jax.grad(qs.von_neumann_entropy)(qs.vacuum(n).cov)
    np.testing.assert_allclose(grad, 0.5 * (1 - np.log(_LOG_FLOOR)) * np.eye(2 * n), rtol=1e-9)


def test_log_negativity_gradient_is_zero_on_separable_states():
    cov = qs.two_mode_squeezed(0.2, 0.5).cov  # ν̃₋ = e^(−0.4) > ½
    assert qs.log_negativity(cov) == 0.0
    np.testing.assert_array_equal(jax.grad(qs.log_negativity)(cov), np.zeros((4, 4)))
    for vacuum in (qs.vacuum(2).cov, qs.vacuum(3).cov):  # ν̃ = ½: derivative from the separable side
        np.testing.assert_array_equal(jax.grad(qs.log_negativity)(vacuum), np.zeros_like(vacuum))


def test_gradient_through_constructors():
    def entanglement(r):
        return qs.log_negativity(qs.two_mode_squeezed(r).cov)

    np.testing.assert_allclose(jax.grad(entanglement)(0.7), 2.0, **TOL)
    grad = jax.grad(lambda m: qs.von_neumann_entropy(qs.thermal(m).cov))(jnp.asarray(0.8))
    np.testing.assert_allclose(grad, np.log(1.8 / 0.8), **TOL)  # dS/dn̄ = ln((n̄+1)/n̄)


def test_vmap_over_states_and_float32():
    states = jax.vmap(qs.two_mode_squeezed)(jnp.linspace(0.1, 1.0, 5))
    assert states.cov.shape == (5, 4, 4)
    np.testing.assert_allclose(
        jax.vmap(qs.log_negativity)(states.cov), 2 * np.linspace(0.1, 1.0, 5)
    )
    # float32 input stays float32 under strict promotion (traced only: no compilation needed)
    cov32 = jax.ShapeDtypeStruct((3, 4, 4), jnp.float32)
    for fn in [*SCALAR_FUNCTIONS.values(), qs.symplectic_eigenvalues]:
        assert jax.eval_shape(fn, cov32).dtype == jnp.float32
    assert jax.eval_shape(qs.is_physical, cov32).dtype == jnp.bool_
    state32 = qs.GaussianState(mean=jnp.zeros(2, jnp.float32), cov=jnp.eye(2, dtype=jnp.float32))
    assert qs.wigner(state32, jnp.zeros(2), jnp.zeros(3, jnp.float32)).dtype == jnp.float32


# ------------------------------------------------------------------------------------- bad input


PUBLIC_COV_FUNCTIONS = [
    qs.symplectic_eigenvalues,
    qs.purity,
    qs.von_neumann_entropy,
    qs.renyi2_entropy,
    qs.mutual_information,
    qs.log_negativity,
    qs.gaussian_discord,
    lambda c: qs.reduce(c, (0,)),
]


@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (3, 3), (0, 0), (2, 4, 3)])
@pytest.mark.parametrize("fn", PUBLIC_COV_FUNCTIONS + [qs.is_physical])
def test_wrong_shapes_raise(fn, shape):
    with pytest.raises(ValueError, match=rf"(cov|state).*{re.escape(str(shape))}"):
        fn(np.ones(shape))
    with pytest.raises(ValueError):
        jax.jit(fn)(jnp.ones(shape))  # shape checks also hold under tracing


@pytest.mark.parametrize("fn", PUBLIC_COV_FUNCTIONS)
def test_bad_values_raise_before_computing(fn):
    cov = np.asarray(qs.two_mode_squeezed(0.3).cov)
    asymmetric = cov.copy()
    asymmetric[0, 1] += 0.1
    nan = cov.copy()
    nan[2, 2] = np.nan
    for bad, message in ((asymmetric, "not symmetric"), (nan, "non-finite")):
        with pytest.raises(ValueError, match=rf"(cov|state) \(shape \(4, 4\)\).*{message}"):
            fn(bad)
    jax.jit(fn)(jnp.asarray(asymmetric))  # values are not checked under tracing


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((2,), (1,)),
        ((0,), (0,)),
        ((0, 0), (1,)),
        ((), (1,)),
        ((-1,), (1,)),
        (("x",), (1,)),
        (0.5, 1),
    ],
)
@pytest.mark.parametrize("fn", [qs.mutual_information, qs.log_negativity, qs.gaussian_discord])
def test_bad_modes_raise(fn, a, b):
    with pytest.raises(ValueError, match=r"\ba\b|overlap"):
        fn(qs.vacuum(2).cov, a, b)
    with pytest.raises(ValueError, match=r"\bb\b|overlap"):
        fn(qs.vacuum(2).cov, b, a)


def test_other_bad_arguments_raise():
    cov3 = qs.vacuum(3).cov
    with pytest.raises(ValueError, match="one mode on each side"):
        qs.gaussian_discord(cov3, (0,), (1, 2))
    for fn in (qs.mutual_information, qs.gaussian_discord):
        with pytest.raises(ValueError, match="kind"):
            fn(cov3, kind="shannon")
    with pytest.raises(ValueError, match="modes"):
        qs.reduce(qs.vacuum(2), (0, 2))
    for n in (0, 1.5, True):
        for fn in (qs.vacuum, qs.symplectic_form):
            with pytest.raises(ValueError, match="n must"):
                fn(n)
    with pytest.raises(ValueError, match="n_th"):
        qs.thermal([0.2, -1.0])
    with pytest.raises(ValueError, match="n_th"):
        qs.two_mode_squeezed(0.3, np.nan)
    with pytest.raises(ValueError, match="alpha"):
        qs.coherent([np.inf])
    with pytest.raises(ValueError, match="cov must be real"):
        qs.purity(np.eye(2, dtype=complex))
    with pytest.raises(ValueError, match="2n = 2"):
        qs.wigner(qs.vacuum(1), np.zeros(3))
    with pytest.raises(ValueError, match=r"quadratures\[1\] must be 1-D"):
        qs.wigner(qs.vacuum(1), np.zeros(3), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"state.mean must have shape \(4,\)"):
        qs.wigner(qs.GaussianState(mean=jnp.zeros(3), cov=qs.vacuum(2).cov), *[jnp.zeros(1)] * 4)


def test_is_physical():
    good = entangled_cov(0)
    too_entangled = np.array(qs.two_mode_squeezed(0.5).cov)  # correlations beyond a pure state
    too_entangled[:2, 2:] *= 1.1
    too_entangled[2:, :2] *= 1.1
    assert np.all(np.linalg.eigvalsh(too_entangled) > 0)
    unphysical = {
        "sub-vacuum": 0.4 * np.eye(4),
        "barely sub-vacuum": 0.4999 * np.eye(4),
        "barely sub-pure": 0.9999 * np.asarray(qs.two_mode_squeezed(1.0).cov),
        "uncertainty violated": np.diag([0.25, 0.5, 0.5, 0.5]),
        "squeezed below the bound": np.diag([2.0, 0.1, 0.5, 0.5]),
        "negative": -np.eye(4),
        "too entangled": too_entangled,
        "asymmetric": good + np.diag([0.1, 0.0, 0.0], 1),
        "nan": np.where(np.eye(4) > 0, np.nan, good),
    }
    assert qs.is_physical(good)
    for name, cov in unphysical.items():
        assert not qs.is_physical(cov), name
    stack = jnp.asarray(np.stack([good, *unphysical.values()]))
    expected = [True] + [False] * len(unphysical)
    np.testing.assert_array_equal(qs.is_physical(stack), expected)
    np.testing.assert_array_equal(jax.jit(qs.is_physical)(stack), expected)
    np.testing.assert_array_equal(jax.vmap(qs.is_physical)(stack), expected)
    assert qs.is_physical(stack).dtype == jnp.bool_
    assert qs.is_physical(qs.vacuum(3).cov) and qs.is_physical(qs.two_mode_squeezed(2.0).cov)
    assert qs.is_physical((1 - 1e-12) * qs.two_mode_squeezed(1.0).cov)  # within the tolerance


# ----------------------------------------------------------------------------------- small pieces


def test_symplectic_form_and_reduce():
    om = np.asarray(qs.symplectic_form(3))
    np.testing.assert_array_equal(om, omega(3))
    np.testing.assert_array_equal(om @ om, -np.eye(6))
    state = qs.GaussianState(mean=jnp.arange(6.0), cov=jnp.asarray(random_cov(5, 3)))
    part = qs.reduce(state, (2, 0))
    np.testing.assert_array_equal(part.mean, [4.0, 5.0, 0.0, 1.0])
    idx = [4, 5, 0, 1]
    np.testing.assert_array_equal(part.cov, np.asarray(state.cov)[np.ix_(idx, idx)])
    assert tree_allclose(state.reduce((2, 0)), part)
    np.testing.assert_array_equal(qs.reduce(state.cov, 1), np.asarray(state.cov)[2:4, 2:4])
    mapped = jax.tree_util.tree_map(lambda x: 2 * x, state)  # no checks on construction
    assert isinstance(mapped, qs.GaussianState) and mapped.n_modes == 3
