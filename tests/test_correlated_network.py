"""CorrelatedBathNetwork: the N = 2 pair to the last bit, QuTiP for N = 3, eq. (8), dark modes."""

import jax.numpy as jnp
import numpy as np
import pytest
import qutip as qt
from test_quadratic import lindbladian_moments, moments, random_low_fock_state

import qsync_jax as qs


def test_two_oscillators_equal_the_pair_exactly():
    for params in [dict(omega=(1.0, 1.2), g=0.1, gamma=0.3, xi=0.6, n_th=(0.1, 0.7)),
                   dict(omega=(1.0, 1.0), g=-0.2, gamma=0.5, xi=-0.9, n_th=(0.0, 0.0))]:
        pair = qs.CorrelatedBathOscillators(**params)
        xi = params["xi"]
        net = qs.CorrelatedBathNetwork(
            omega=params["omega"], coupling=params["g"] * (1 - np.eye(2)), gamma=params["gamma"],
            correlation=np.array([[1.0, xi], [xi, 1.0]]), n_th=params["n_th"])
        np.testing.assert_array_equal(net.drift_matrix(), pair.drift_matrix())
        np.testing.assert_array_equal(net.diffusion_matrix(), pair.diffusion_matrix())
        np.testing.assert_array_equal(qs.steady_state(net).cov, qs.steady_state(pair).cov)


def fock_network(net, N):
    """H and the channels L_α = √ξ_α Σ_i t_iα L_i (eq. (7); eigenvectors as columns)."""
    n = net.n_modes
    a = [qt.tensor(*[qt.destroy(N) if i == j else qt.qeye(N) for j in range(n)])
         for i in range(n)]
    h = np.asarray(net.frequency_matrix())
    H = sum(h[i, j] * a[i].dag() * a[j] for i in range(n) for j in range(n))
    lam, T = np.linalg.eigh(np.asarray(net.correlation))
    gamma, n_th = float(net.gamma), np.asarray(net.n_th)
    c_ops = []
    for alpha in range(n):
        if lam[alpha] <= 0:
            continue
        w = np.sqrt(lam[alpha]) * T[:, alpha]
        c_ops.append(sum(w[i] * np.sqrt(gamma * (n_th[i] + 1)) * a[i] for i in range(n)))
        c_ops.append(sum(w[i] * np.sqrt(gamma * n_th[i]) * a[i].dag() for i in range(n)))
    u = []
    for i in range(n):
        u += [(a[i] + a[i].dag()) / np.sqrt(2), (a[i] - a[i].dag()) / (1j * np.sqrt(2))]
    return H, c_ops, u


def random_network(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3, 3))
    corr = X @ X.T + 0.2 * np.eye(3)
    corr /= np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
    g = rng.uniform(-0.3, 0.3, (3, 3))
    return qs.CorrelatedBathNetwork(
        omega=rng.uniform(0.8, 1.2, 3), coupling=np.triu(g, 1) + np.triu(g, 1).T,
        gamma=rng.uniform(0.2, 0.5), correlation=corr, n_th=rng.uniform(0.0, 0.01, 3))


def test_random_three_mode_network_moment_equations_are_exact():
    rng = np.random.default_rng(2)
    net = random_network(0)
    net = qs.CorrelatedBathNetwork(omega=net.omega, coupling=net.coupling, gamma=net.gamma,
                                   correlation=net.correlation, n_th=(0.3, 1.2, 0.0))
    H, c_ops, u = fock_network(net, 4)
    mean, cov, dmean, dcov = lindbladian_moments(H, c_ops, u, random_low_fock_state(rng, 3, 4, 2))
    A, D = np.asarray(net.drift_matrix()), np.asarray(net.diffusion_matrix())
    np.testing.assert_allclose(dmean, A @ mean, atol=1e-12)
    np.testing.assert_allclose(dcov, A @ cov + cov @ A.T + D, atol=1e-12)


@pytest.mark.slow
def test_random_three_mode_network_steady_state_matches_qutip():
    """Cutoff 5 per mode, n̄ ≤ 0.01: truncation far below the 1e-7 required."""
    net = random_network(1)
    H, c_ops, u = fock_network(net, 5)
    mean, cov = moments(qt.steadystate(H, c_ops), u)
    state = qs.steady_state(net)
    np.testing.assert_allclose(state.mean, mean, atol=1e-7)
    np.testing.assert_allclose(state.cov, cov, atol=1e-7)


@pytest.mark.parametrize("N", [4, 5, 6, 7])
def test_ring_correlation_spectrum_is_eq_8(N):
    """Eigenvalues of Ξ = I + ξA on a ring: 1 + 2ξ cos(2πα/N) (eq. (8)); ξ = −½ makes the uniform
    mode dark (equal ω, equal n̄), and for even N ξ = +½ the staggered one."""
    xi = 0.3
    ring = qs.correlated_bath_ring(N, omega=1.0, g=0.1, gamma=0.2, xi=xi, n_th=0.1)
    expected = np.sort(1 + 2 * xi * np.cos(2 * np.pi * np.arange(N) / N))
    np.testing.assert_allclose(np.linalg.eigvalsh(np.asarray(ring.correlation)), expected,
                               atol=1e-14)
    assert len(qs.dark_modes(ring).frequencies) == 0
    for xi, pattern in [(-0.5, np.ones(N))] + ([(0.5, (-1.0) ** np.arange(N))] if N % 2 == 0
                                               else []):
        ring = qs.correlated_bath_ring(N, omega=1.0, g=0.1, gamma=0.2, xi=xi, n_th=0.1)
        dark = qs.dark_modes(ring)
        assert dark.amplitudes.shape == (N, 1)
        overlap = abs(np.vdot(dark.amplitudes[:, 0], pattern / np.sqrt(N)))
        assert overlap == pytest.approx(1.0, abs=1e-10)
        # frequency of the dark mode: ω + g·λ(A) for the pattern's eigenvalue of A
        assert dark.frequencies[0] == pytest.approx(1.0 + 0.1 * (2 if xi < 0 else -2), abs=1e-12)
        sol = qs.solve_steady_state(ring, throw=False)
        assert qs.status_names(sol.status) == "no_steady_state"


def test_pair_dark_mode_is_symmetric_at_minus_one():
    """ξ = −1 leaves the symmetric (in-phase) mode undamped, ξ = +1 the antisymmetric one."""
    for xi, pattern in [(-1.0, [1, 1]), (1.0, [1, -1])]:
        net = qs.correlated_bath_graph(np.array([[0, 1], [1, 0]]), omega=1.0, g=0.1, gamma=0.2,
                                       xi=xi, n_th=0.4)
        dark = qs.dark_modes(net)
        assert abs(np.vdot(dark.amplitudes[:, 0], np.array(pattern) / np.sqrt(2))) == \
            pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(correlation=np.array([[1.0, 1.5], [1.5, 1.0]])), "correlation"),
        (dict(correlation=np.array([[2.0, 0.0], [0.0, 1.0]])), "correlation"),
        (dict(correlation=np.array([[1.0, 0.2], [0.1, 1.0]])), "correlation"),
        (dict(correlation=np.eye(3)), "correlation"),
        (dict(correlation=np.array([[1.0, np.nan], [np.nan, 1.0]])), "correlation"),
        (dict(coupling=np.array([[0.1, 0.1], [0.1, 0.0]])), "coupling"),
        (dict(coupling=np.array([[0.0, 0.1], [0.2, 0.0]])), "coupling"),
        (dict(coupling=np.ones(2)), "coupling"),
        (dict(gamma=-0.1), "gamma"),
        (dict(n_th=(-0.1, 0.0)), "n_th"),
        (dict(omega=(1.0, 1.0, 1.0)), "omega"),
        (dict(omega=(1.0, np.inf)), "omega"),
    ],
)
def test_bad_network_input_raises(kwargs, name):
    params = dict(omega=(1.0, 1.1), coupling=0.1 * (1 - np.eye(2)), gamma=0.2,
                  correlation=np.eye(2), n_th=0.0) | kwargs
    with pytest.raises(ValueError, match=name):
        qs.CorrelatedBathNetwork(**params)


def test_bad_graph_input_raises():
    with pytest.raises(ValueError, match="xi"):
        qs.correlated_bath_ring(6, omega=1.0, g=0.1, gamma=0.2, xi=0.7)
    with pytest.raises(ValueError, match="adjacency"):
        qs.correlated_bath_graph(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]]), omega=1.0, g=0.1,
                                 gamma=0.2, xi=0.1)
    with pytest.raises(ValueError, match="n_sites"):
        qs.correlated_bath_ring(2, omega=1.0, g=0.1, gamma=0.2, xi=0.1)
    with pytest.raises(ValueError, match="model"):
        qs.dark_modes(qs.CorrelatedBathOscillators(omega=1.0, g=0.0, gamma=0.1, xi=0.0))
    net = qs.correlated_bath_ring(4, omega=1.0, g=0.1, gamma=0.2, xi=0.1)
    with pytest.raises(ValueError, match="rtol"):
        qs.dark_modes(net, rtol=-1.0)
    assert jnp.all(jnp.isfinite(net.drift_matrix()))
