"""Synchronization measures S_c and S_p (Mari et al. 2013, eqs. (1)–(5)).

References: the operator definitions evaluated by brute force in QuTiP, closed forms for coherent
and rotating squeezed states, the paper's complex-basis rotation C' = U C U†, and the bound
S_c ≤ 1 on random physical states.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import qutip
from helpers import tree_allclose

import qsync_jax as qs


def _rotation(phi):
    c, s = np.cos(phi), np.sin(phi)
    return np.array([[c, -s], [s, c]])


def _random_physical_cov(rng, n_modes):
    """S (⊕ thermal) Sᵀ with S a random symplectic matrix (product of squeezers and rotations)."""
    dim = 2 * n_modes
    omega = np.kron(np.eye(n_modes), np.array([[0.0, 1.0], [-1.0, 0.0]]))
    h = rng.normal(size=(dim, dim))
    h = h + h.T
    # exp(Ω H) is symplectic for symmetric H.
    w, v = np.linalg.eig(omega @ (0.3 * h))
    symp = np.real(v @ np.diag(np.exp(w)) @ np.linalg.inv(v))
    nu = 0.5 + rng.exponential(1.0, size=n_modes)
    return symp @ np.diag(np.repeat(nu, 2)) @ symp.T


def _state(mean, cov):
    return qs.GaussianState(mean=jnp.asarray(mean, dtype=float), cov=jnp.asarray(cov, dtype=float))


def test_vacuum_and_coherent_states():
    vac = _state(np.zeros(4), 0.5 * np.eye(4))
    assert np.isclose(qs.complete_sync(vac, 0, 1), 1.0, rtol=1e-14)
    assert np.isclose(qs.complete_sync(vac, 0, 1, relative=False), 1.0, rtol=1e-14)
    # Coherent states with means d_0, d_1: relative S_c = 1, absolute 1/(1 + |d_0 − d_1|²/2).
    mean = np.array([1.0, -2.0, 0.5, 3.0])
    coh = _state(mean, 0.5 * np.eye(4))
    assert np.isclose(qs.complete_sync(coh, 0, 1), 1.0, rtol=1e-14)
    diff2 = np.sum((mean[:2] - mean[2:]) ** 2)
    assert np.isclose(qs.complete_sync(coh, 0, 1, relative=False), 1.0 / (1.0 + diff2 / 2))
    # Coherent states of equal phases: no phase noise beyond vacuum, S_p = 1.
    same_phase = _state(np.array([1.0, 1.0, 3.0, 3.0]), 0.5 * np.eye(4))
    assert np.isclose(qs.phase_sync(same_phase, 0, 1), 1.0, rtol=1e-14)


def test_rotating_squeezed_clock_hands():
    """Paper's example: phase quadratures squeezed to ε along each mean field ⇒ S_p = 1/(2ε)."""
    eps = 0.05
    phis = (0.3, 0.3 + 2.0)  # different phases: each squeezed along its own mean
    mean, blocks = [], []
    for phi in phis:
        mean += [2.0 * np.cos(phi), 2.0 * np.sin(phi)]
        rot = _rotation(phi)
        blocks.append(rot @ np.diag([1.0 / (4 * eps), eps]) @ rot.T)
    cov = np.zeros((4, 4))
    cov[:2, :2], cov[2:, 2:] = blocks
    state = _state(np.array(mean), cov)
    assert np.isclose(qs.phase_sync(state, 0, 1), 1.0 / (2 * eps), rtol=1e-12)


def _brute_force_phase_sync(mean, cov, i, j):
    """Eq. (5) via the paper's recipe: R' = U R in the complex basis (a, a†), then back."""
    n = cov.shape[0] // 2
    t = np.kron(np.eye(n), np.array([[1.0, 1.0j], [1.0, -1.0j]]) / np.sqrt(2))  # (x,p)→(a,a†)
    phases = np.arctan2(mean[1::2], mean[0::2])
    u = np.diag(np.ravel([[np.exp(-1j * f), np.exp(1j * f)] for f in phases]))
    c_complex = t @ cov @ t.conj().T
    c_rot = np.linalg.inv(t) @ (u @ c_complex @ u.conj().T) @ np.linalg.inv(t).conj().T
    e = np.zeros(2 * n)
    e[2 * i + 1], e[2 * j + 1] = 1 / np.sqrt(2), -1 / np.sqrt(2)
    return 0.5 / np.real(e @ c_rot @ e)


def test_phase_sync_matches_complex_basis_rotation():
    rng = np.random.default_rng(1)
    for _ in range(5):
        cov = _random_physical_cov(rng, 3)
        mean = rng.normal(size=6) * 3
        for i, j in ((0, 1), (2, 0), (1, 2)):
            got = qs.phase_sync(_state(mean, cov), i, j)
            assert np.isclose(got, _brute_force_phase_sync(mean, cov, i, j), rtol=1e-12)


def test_phase_sync_derivatives_written_out_equal_the_formula_and_differences():
    """The gradients of S_p's derivative rule equal the derivative of the formula (any tangent,
    also non-symmetric ones; batched) and central differences."""
    from qsync_jax._measures import _phase_sync_of

    rng = np.random.default_rng(4)
    mean = jnp.asarray(rng.normal(size=(3, 4)) * 2)
    cov = jnp.asarray(np.stack([_random_physical_cov(rng, 2) for _ in range(3)]))
    dmean, dcov = jnp.asarray(rng.normal(size=(3, 4))), jnp.asarray(rng.normal(size=(3, 4, 4)))
    value, tangent = jax.jvp(_phase_sync_of, (mean, cov), (dmean, dcov))
    want_value, want = jax.jvp(_phase_sync_of.fun, (mean, cov), (dmean, dcov))
    np.testing.assert_array_equal(value, want_value)
    np.testing.assert_allclose(tangent, want, rtol=1e-12)
    grads = jax.grad(lambda m, c: jnp.sum(_phase_sync_of(m, c)), argnums=(0, 1))(mean, cov)
    np.testing.assert_allclose(jnp.sum(grads[0] * dmean) + jnp.sum(grads[1] * dcov),
                               jnp.sum(want), rtol=1e-12)
    h = 1e-6
    fd = (_phase_sync_of(mean + h * dmean, cov + h * dcov)
          - _phase_sync_of(mean - h * dmean, cov - h * dcov)) / (2 * h)
    np.testing.assert_allclose(tangent, fd, rtol=1e-7)


def test_measures_match_operator_definitions_in_qutip():
    """S_c, S_p from moments computed in Fock space equal the operator expectation values."""
    dim = 30  # truncation error far below the physicality tolerance of the measures
    a = qutip.tensor(qutip.destroy(dim), qutip.qeye(dim))
    b = qutip.tensor(qutip.qeye(dim), qutip.destroy(dim))
    psi = qutip.tensor(qutip.coherent(dim, 1.0 + 0.5j), qutip.basis(dim, 0))
    psi = (0.3 * (a.dag() * b.dag() - a * b)).expm() * psi  # two-mode squeezing
    psi = (0.4 * (a.dag() * b - a * b.dag())).expm() * psi  # beam splitter
    psi = (-0.1j * (b.dag() * b.dag() + b * b)).expm() * psi  # local squeezing, ξ = 0.2i
    psi = qutip.tensor(qutip.qeye(dim), qutip.displace(dim, -0.7 + 1.2j)) * psi
    psi = psi.unit()  # truncation leaves a norm of 1 − O(1e-12)
    quads = []
    for op in (a, b):
        quads += [(op + op.dag()) / np.sqrt(2), (op - op.dag()) / (1j * np.sqrt(2))]
    mean = np.array([qutip.expect(q, psi) for q in quads]).real
    cov = np.array(
        [[qutip.expect((q1 * q2 + q2 * q1) / 2, psi).real for q2 in quads] for q1 in quads]
    ) - np.outer(mean, mean)
    state = _state(mean, cov)

    def variance(op):
        return qutip.expect(op * op, psi).real - qutip.expect(op, psi).real ** 2

    q_minus = (quads[0] - quads[2]) / np.sqrt(2)
    p_minus = (quads[1] - quads[3]) / np.sqrt(2)
    expected_rel = 1.0 / (variance(q_minus) + variance(p_minus))
    expected_abs = 1.0 / (qutip.expect(q_minus**2 + p_minus**2, psi).real)
    assert np.isclose(qs.complete_sync(state, 0, 1), expected_rel, rtol=1e-8)
    assert np.isclose(qs.complete_sync(state, 0, 1, relative=False), expected_abs, rtol=1e-8)
    phases = [np.angle(qutip.expect(op, psi)) for op in (a, b)]
    p_prime = [
        -np.sin(f) * quads[2 * k] + np.cos(f) * quads[2 * k + 1] for k, f in enumerate(phases)
    ]
    expected_sp = 0.5 / variance((p_prime[0] - p_prime[1]) / np.sqrt(2))
    assert np.isclose(qs.phase_sync(state, 0, 1), expected_sp, rtol=1e-8)


def test_complete_sync_bounded_by_one_on_random_states():
    rng = np.random.default_rng(2)
    for _ in range(50):
        cov = _random_physical_cov(rng, 2)
        state = _state(rng.normal(size=4), cov)
        sc = float(qs.complete_sync(state, 0, 1))
        assert 0.0 < sc <= 1.0 + 1e-12
        assert float(qs.complete_sync(state, 0, 1, relative=False)) <= sc


def test_batched_equals_loop_and_vmap_and_jit():
    rng = np.random.default_rng(3)
    covs = np.stack([_random_physical_cov(rng, 3) for _ in range(6)]).reshape(2, 3, 6, 6)
    means = rng.normal(size=(2, 3, 6))
    batched = _state(means, covs)
    for fn in (qs.complete_sync, qs.phase_sync):
        got = fn(batched, 0, 2)
        assert got.shape == (2, 3)
        loop = np.array(
            [[fn(_state(means[a, b], covs[a, b]), 0, 2) for b in range(3)] for a in range(2)]
        )
        assert tree_allclose(got, loop, rtol=1e-13)
        flat = _state(means.reshape(6, 6), covs.reshape(6, 6, 6))
        vmapped = jax.vmap(lambda s: fn(s, 0, 2))(flat)
        assert tree_allclose(vmapped, loop.reshape(6), rtol=1e-13)
        assert tree_allclose(jax.jit(fn, static_argnums=(1, 2))(batched, 0, 2), got, rtol=1e-13)


def test_bad_mode_indices():
    state = _state(np.ones(4), 0.5 * np.eye(4))
    with pytest.raises(ValueError, match="mode `j`"):
        qs.complete_sync(state, 0, 2)
    with pytest.raises(ValueError, match="must differ"):
        qs.phase_sync(state, 1, 1)
    with pytest.raises(ValueError, match="mode `i`"):
        qs.phase_sync(state, -1, 1)


def test_sync_measures_bundle():
    rng = np.random.default_rng(4)
    covs = np.stack([_random_physical_cov(rng, 3) for _ in range(4)])
    state = _state(rng.normal(size=(4, 6)), covs)
    pairs = [(0, 1), (2, 0)]
    got = qs.SyncMeasures(pairs, correlations=True)(0.0, state)
    assert set(got) == {"complete_sync", "phase_sync", "log_negativity", "discord"}
    for p, (i, j) in enumerate(pairs):
        assert tree_allclose(got["complete_sync"][:, p], qs.complete_sync(state, i, j), rtol=1e-14)
        assert tree_allclose(got["phase_sync"][:, p], qs.phase_sync(state, i, j), rtol=1e-14)
        assert tree_allclose(got["log_negativity"][:, p], qs.log_negativity(covs, (i,), (j,)))
        assert tree_allclose(got["discord"][:, p], qs.gaussian_discord(covs, (i,), (j,)))
    single = qs.SyncMeasures((0, 2))
    assert single.pairs == ((0, 2),) and set(single(0.0, state)) == {"complete_sync", "phase_sync"}
    assert single == qs.SyncMeasures([(0, 2)])  # equal instances: no recompilation
    assert single != qs.SyncMeasures([(0, 1)])  # positive control: other pairs differ
    for bad in ([(0, 1, 2)], [0], []):
        with pytest.raises(ValueError, match="`pairs`"):
            qs.SyncMeasures(bad)
