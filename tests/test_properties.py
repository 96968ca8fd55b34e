"""Property-based tests (hypothesis): random stable parameters of every model give physical
covariances, S_c ≤ 1 and a vanishing Lyapunov residual; a failed solve gives NaN, never numbers.

S_c ≤ 1 is Mari et al.'s eq. (2): ⟨q_-²⟩⟨p_-²⟩ ≥ ¼ (Heisenberg, [q_-, p_-] = i) gives
⟨q_-²⟩ + ⟨p_-²⟩ ≥ 1 for every physical state, for the relative and the absolute measure alike.
Each property compiles once (parameters are array leaves) and runs a few cheap examples.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import qsync_jax as qs

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)
rate = functools.partial(st.floats, allow_nan=False, allow_infinity=False)


def _all_pairs_sc(state):
    n = state.cov.shape[-1] // 2
    return jnp.stack([qs.complete_sync(state, i, j) for i in range(n) for j in range(i + 1, n)])


@jax.jit
def _steady(model):
    sol = qs.solve_steady_state(model, throw=False)
    A, D = model.drift_matrix(), model.diffusion_matrix()
    C = sol.state.cov
    residual = jnp.max(jnp.abs(A @ C + C @ A.T + D)) / jnp.max(jnp.abs(D))
    return sol, residual, _all_pairs_sc(sol.state), qs.is_physical(C)


@SETTINGS
@given(
    omega=st.tuples(rate(min_value=0.5, max_value=2.0), rate(min_value=0.5, max_value=2.0)),
    g=rate(min_value=-0.5, max_value=0.5),
    gamma=rate(min_value=0.05, max_value=1.0),
    xi=rate(min_value=-0.99, max_value=0.99),
    n_th=st.tuples(rate(min_value=0.0, max_value=5.0), rate(min_value=0.0, max_value=5.0)),
)
def test_correlated_bath_steady_state_is_physical(omega, g, gamma, xi, n_th):
    model = qs.CorrelatedBathOscillators(omega=omega, g=g, gamma=gamma, xi=xi, n_th=n_th)
    sol, residual, sc, physical = _steady(model)
    if qs.status_names(sol.status) != "success":  # no steady state: NaN, never numbers
        assert np.isnan(np.asarray(sol.state.cov)).all()
        return
    assert residual < 1e-10
    assert bool(physical)
    assert np.all(np.asarray(sc) <= 1.0 + 1e-12)


@SETTINGS
@given(
    a=st.lists(rate(min_value=-2.0, max_value=2.0), min_size=16, max_size=16),
    b=st.lists(rate(min_value=-1.0, max_value=1.0), min_size=16, max_size=16),
    shift=rate(min_value=0.1, max_value=3.0),
)
def test_lyapunov_residual_vanishes(a, b, shift):
    """Random Hurwitz A (spectrum shifted left of zero) and D = BBᵀ ⪰ 0."""
    A = jnp.asarray(a).reshape(4, 4)
    A = A - (jnp.max(jnp.linalg.eigvals(A).real) + shift) * jnp.eye(4)
    B = jnp.asarray(b).reshape(4, 4)
    D = B @ B.T
    C = qs.solve_lyapunov(A, D)
    scale = jnp.max(jnp.abs(A)) * jnp.max(jnp.abs(C)) + jnp.max(jnp.abs(D))
    assert float(jnp.max(jnp.abs(A @ C + C @ A.T + D))) <= 1e-11 * float(scale)
    np.testing.assert_allclose(C, C.T, atol=1e-12 * float(jnp.max(jnp.abs(C))))


@jax.jit
def _pair_run(model):
    traj = qs.evolve(model, jnp.asarray([20.0, 40.0, 60.0]), throw=False,
                     config=qs.SolverConfig(rtol=1e-7, atol=1e-7))
    return traj, qs.is_physical(traj.states.cov), _all_pairs_sc(traj.states)


@SETTINGS
@given(
    E=rate(min_value=0.0, max_value=400.0),
    kappa=rate(min_value=0.1, max_value=1.0),
    gamma=rate(min_value=0.001, max_value=0.05),
    g=rate(min_value=0.001, max_value=0.01),
    mu=rate(min_value=0.0, max_value=0.05),
    n_th=rate(min_value=0.0, max_value=10.0),
)
def test_optomechanical_pair_success_means_physical(E, kappa, gamma, g, mu, n_th):
    """Over random (including chaotic) parameters: success ⇒ physical saves and S_c ≤ 1;
    any other status ⇒ NaN from the first failed save on."""
    model = qs.optomechanical_pair(omega=(1.0, 1.005), kappa=kappa, gamma=gamma, g=g, E=E,
                                   mu=mu, n_th=n_th)
    traj, physical, sc = _pair_run(model)
    if qs.status_names(traj.status) == "success":
        assert np.all(np.asarray(physical))
        assert np.all(np.asarray(sc) <= 1.0 + 1e-9)
    else:
        assert np.isnan(np.asarray(traj.states.cov[-1])).all()
