"""steady_state / solve_lyapunov: closed forms, SciPy, the integrator, status, transforms.

References (tests/README.md): SciPy's ``solve_continuous_lyapunov``; the degenerate parametric
oscillator below threshold (closed-form squeezed steady state and its derivative); long-time
integration with :func:`qsync_jax.evolve`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import PARAMETRIC_TRACES as TRACES
from helpers import ParametricOscillator, finite_difference_grad
from scipy.linalg import solve_continuous_lyapunov

import qsync_jax as qs


def closed_form(kappa, chi, force):
    mean = np.array([force / (kappa / 2 - chi), 0.0])
    cov = np.diag([kappa / 4 / (kappa / 2 - chi), kappa / 4 / (kappa / 2 + chi)])
    return mean, cov


def random_stable(rng, m):
    A = rng.normal(size=(m, m))
    A -= (np.max(np.linalg.eigvals(A).real) + rng.uniform(0.1, 1.0)) * np.eye(m)
    X = rng.normal(size=(m, m))
    return A, X @ X.T


# ------------------------------------------------------------------------------ Lyapunov solve


@pytest.mark.parametrize("m", [2, 4, 6])
def test_solve_lyapunov_matches_scipy(m):
    rng = np.random.default_rng(m)
    A, D = random_stable(rng, m)
    C = np.asarray(qs.solve_lyapunov(jnp.asarray(A), jnp.asarray(D)))
    np.testing.assert_allclose(C, solve_continuous_lyapunov(A, -D), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(A @ C + C @ A.T + D, 0.0, atol=1e-12)


def test_solve_lyapunov_batches_and_checks_shapes():
    rng = np.random.default_rng(7)
    pairs = [random_stable(rng, 4) for _ in range(3)]
    A = jnp.asarray(np.stack([p[0] for p in pairs]))
    D = jnp.asarray(np.stack([p[1] for p in pairs]))
    batched = qs.solve_lyapunov(A, D)
    for k in range(3):
        np.testing.assert_allclose(batched[k], qs.solve_lyapunov(A[k], D[k]), rtol=1e-13)
    np.testing.assert_allclose(jax.vmap(qs.solve_lyapunov)(A, D), batched, rtol=1e-13)
    with pytest.raises(ValueError, match="`A` and `D`"):
        qs.solve_lyapunov(A[0], D[0, :3, :3])
    with pytest.raises(ValueError, match="`A` and `D`"):
        qs.solve_lyapunov(jnp.ones((3, 4)), jnp.ones((3, 4)))


# ------------------------------------------------------------------------------- steady state


@pytest.mark.parametrize("chi", [-0.3, 0.0, 0.2, 0.49])
def test_squeezed_steady_state_closed_form(chi):
    sol = qs.solve_steady_state(ParametricOscillator(1.0, chi, 0.3))
    mean, cov = closed_form(1.0, chi, 0.3)
    assert sol.status == qs.Status.success
    np.testing.assert_allclose(sol.state.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(sol.state.cov, cov, rtol=1e-12, atol=1e-15)
    assert float(sol.spectral_abscissa) == pytest.approx(abs(chi) - 0.5)
    assert bool(qs.is_physical(sol.state.cov))


@pytest.mark.parametrize("chi", [0.5, 0.7])
def test_no_steady_state_at_and_above_threshold(chi):
    model = ParametricOscillator(1.0, chi, 0.3)
    sol = qs.solve_steady_state(model, throw=False)
    assert sol.status == qs.Status.no_steady_state
    assert np.all(np.isnan(sol.state.mean)) and np.all(np.isnan(sol.state.cov))
    with pytest.raises(Exception, match="no unique steady state"):
        qs.steady_state(model)
    with pytest.raises(Exception, match="no unique steady state"):
        jax.jit(qs.steady_state)(model)


def test_vmap_with_failing_points_and_their_gradients():
    """Under vmap each point gets its own status; failing points do not poison the gradients."""
    chis = jnp.asarray([0.1, 0.6, -0.2, 0.5])
    sols = jax.vmap(lambda c: qs.solve_steady_state(ParametricOscillator(1.0, c, 0.0),
                                                    throw=False))(chis)
    assert list(qs.status_names(sols.status)) == ["success", "no_steady_state", "success",
                                                   "no_steady_state"]

    def x_variance(chi):
        sol = qs.solve_steady_state(ParametricOscillator(1.0, chi, 0.0), throw=False)
        return sol.state.cov[0, 0]

    grads = np.asarray(jax.vmap(jax.grad(x_variance))(chis))
    ok = np.array([0, 2])
    np.testing.assert_allclose(grads[ok], 0.25 / (0.5 - np.asarray(chis)[ok]) ** 2, rtol=1e-12)


def test_gradients_match_closed_form_and_finite_differences():
    def observables(params):
        kappa, chi, force = params
        state = qs.steady_state(ParametricOscillator(kappa, chi, force))
        return jnp.stack([state.cov[0, 0], state.cov[1, 1], state.mean[0]])

    params = jnp.asarray([1.2, 0.3, 0.4])
    jac_fwd = jax.jacfwd(observables)(params)
    jac_rev = jax.jacrev(observables)(params)
    np.testing.assert_allclose(jac_fwd, jac_rev, rtol=1e-12)
    for k in range(3):
        fd = finite_difference_grad(lambda p: observables(p)[k], params)
        np.testing.assert_allclose(jac_rev[k], fd, rtol=1e-7)
    # d/dχ of κ/4/(κ/2 − χ) = κ/4/(κ/2 − χ)².
    assert float(jac_rev[0, 1]) == pytest.approx(0.3 / (0.6 - 0.3) ** 2, rel=1e-12)


def test_jit_and_no_recompilation_for_new_values():
    model = ParametricOscillator(1.0, 0.1, 0.2)
    ref = qs.steady_state(model)
    TRACES.clear()
    for chi in (0.05, -0.1, 0.3):
        qs.steady_state(ParametricOscillator(1.0, chi, 0.2))
    assert TRACES == []  # the compiled solve is reused for any parameter values
    jax.clear_caches()  # positive control: with the compiled solve gone, the counter moves
    qs.steady_state(ParametricOscillator(1.0, 0.1, 0.2))
    assert len(TRACES) >= 1
    jitted = jax.jit(qs.steady_state)(model)
    np.testing.assert_allclose(jitted.cov, ref.cov, rtol=1e-14)
    np.testing.assert_allclose(jitted.mean, ref.mean, rtol=1e-14)


def test_steady_state_is_the_long_time_limit_of_evolve():
    """The integrator relaxes to the Lyapunov solution, and stays there (same conventions)."""
    model = qs.CorrelatedBathOscillators(
        omega=(1.0, 1.1), g=0.2, gamma=0.4, xi=-0.6, n_th=(0.3, 1.2)
    )
    sol = qs.solve_steady_state(model)
    relaxation = -1.0 / float(sol.spectral_abscissa)
    config = qs.SolverConfig(rtol=1e-11, atol=1e-11)
    late = qs.evolve(model, jnp.asarray([40.0 * relaxation]), config=config).states
    np.testing.assert_allclose(late.cov[-1], sol.state.cov, atol=1e-9)
    stay = qs.evolve(model, jnp.asarray([5.0]), state0=sol.state, config=config).states
    np.testing.assert_allclose(stay.cov[-1], sol.state.cov, atol=1e-10)


def test_rejects_models_that_are_not_linear():
    pair = qs.optomechanical_pair(**qs.MARI2013_FIG2)
    with pytest.raises(ValueError, match="linear model"):
        qs.steady_state(pair)
    with pytest.raises(ValueError, match="linear model"):
        qs.solve_steady_state(pair, throw=False)
