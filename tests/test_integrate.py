"""evolve / time_average against closed forms of a damped thermal oscillator."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import DampedOscillator, x_variance
from scipy.integrate import quad
from scipy.linalg import expm, solve_continuous_lyapunov

import qsync_jax as qs

MODEL = DampedOscillator(1.0, 0.1, 2.0, 0.05)
STATE0 = qs.GaussianState(jnp.array([1.0, -0.5]), jnp.array([[0.7, 0.1], [0.1, 0.5]]))


def exact(model, state0, t):
    """Closed form: mean e^{At}(m0 + A⁻¹b) − A⁻¹b, cov C∞ + e^{At}(C0 − C∞)e^{Aᵀt}."""
    A = np.asarray(model.drift_matrix())
    b = np.asarray(model.drive_vector())
    D = np.asarray(model.diffusion_matrix())
    c_inf = solve_continuous_lyapunov(A, -D)
    m_inf = -np.linalg.solve(A, b)
    E = expm(A * t)
    return E @ (np.asarray(state0.mean) - m_inf) + m_inf, c_inf + E @ (
        np.asarray(state0.cov) - c_inf
    ) @ E.T


def test_evolve_matches_closed_form():
    ts = jnp.linspace(0.0, 20.0, 9)
    traj = qs.evolve(MODEL, ts, state0=STATE0, config=qs.SolverConfig(rtol=1e-10, atol=1e-10))
    assert traj.states.mean.shape == (9, 2) and traj.states.cov.shape == (9, 2, 2)
    for k, t in enumerate(np.asarray(ts)):
        mean, cov = exact(MODEL, STATE0, t)
        np.testing.assert_allclose(traj.states.mean[k], mean, rtol=0, atol=1e-8)
        np.testing.assert_allclose(traj.states.cov[k], cov, rtol=0, atol=1e-8)
    assert traj.status == qs.Status.success


def test_default_initial_state_is_thermal_bath():
    traj = qs.evolve(MODEL, jnp.array([0.0]))
    np.testing.assert_allclose(traj.states.cov[0], 2.5 * np.eye(2))
    np.testing.assert_allclose(traj.states.mean[0], 0.0)


def test_save_fn_keeps_only_what_is_asked():
    ts = jnp.linspace(0.0, 5.0, 4)
    traj = qs.evolve(MODEL, ts, state0=STATE0, save=x_variance)
    assert traj.states.shape == (4,)
    full = qs.evolve(MODEL, ts, state0=STATE0)
    np.testing.assert_allclose(traj.states, full.states.cov[:, 0, 0], rtol=1e-12)


@pytest.mark.parametrize("window", [(0.0, 10.0), (3.0, 17.0)])
def test_time_average_matches_quadrature(window):
    avg = qs.time_average(
        MODEL, x_variance, window, state0=STATE0, config=qs.SolverConfig(rtol=1e-10, atol=1e-10)
    )
    ref = quad(lambda t: exact(MODEL, STATE0, t)[1][0, 0], *window, epsabs=1e-13)[0]
    np.testing.assert_allclose(avg.value, ref / (window[1] - window[0]), rtol=1e-9)
    np.testing.assert_allclose(avg.state.cov, exact(MODEL, STATE0, window[1])[1], atol=1e-8)


def test_time_average_converges_with_tolerance():
    ref = quad(lambda t: exact(MODEL, STATE0, t)[1][0, 0], 1.0, 30.0, epsabs=1e-13)[0] / 29.0
    errors = [
        abs(
            float(
                qs.time_average(
                    MODEL, x_variance, (1.0, 30.0), state0=STATE0,
                    config=qs.SolverConfig(rtol=tol, atol=tol),
                ).value
            )
            - ref
        )
        for tol in (1e-4, 1e-7, 1e-10)
    ]
    assert errors[0] > errors[2] and errors[2] < 1e-9


def test_jit_matches_no_jit_and_vmap_matches_loop():
    ts = jnp.linspace(0.0, 5.0, 3)
    gammas = jnp.array([0.05, 0.1, 0.3])

    def run(gamma):
        return qs.evolve(eqx.tree_at(lambda m: m.gamma, MODEL, gamma), ts, state0=STATE0).states

    batched = jax.vmap(run)(gammas)
    jitted = jax.jit(run)(gammas[1])
    for k, gamma in enumerate(gammas):
        single = run(gamma)
        # Under vmap a stage sum is a chain of additions, alone one reduction
        # (qsync_jax._solvers._stage_sum): the same terms in the same order, but XLA may round
        # them differently (fused multiply-adds), and the adaptive steps follow.
        np.testing.assert_allclose(batched.cov[k], single.cov, rtol=1e-8)
    np.testing.assert_allclose(jitted.cov, run(gammas[1]).cov, rtol=1e-12)


def test_grad_matches_finite_differences():
    def objective(gamma):
        model = eqx.tree_at(lambda m: m.gamma, MODEL, gamma)
        return qs.time_average(model, x_variance, (2.0, 12.0), state0=STATE0).value

    grad = jax.grad(objective)(0.1)
    h = 1e-5
    fd = (objective(0.1 + h) - objective(0.1 - h)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_failures_are_values_and_errors():
    ts = jnp.linspace(0.0, 10.0, 5)
    short = qs.evolve(MODEL, ts, state0=STATE0, config=qs.SolverConfig(max_steps=3), throw=False)
    assert qs.status_names(short.status) == "max_steps_reached"
    assert "max_steps" in qs.status_message(short.status)
    with pytest.raises(Exception, match="max_steps"):
        qs.evolve(MODEL, ts, state0=STATE0, config=qs.SolverConfig(max_steps=3))

    def run(gamma):
        model = eqx.tree_at(lambda m: m.gamma, MODEL, gamma)
        return qs.evolve(model, ts, state0=STATE0, throw=False)

    batch = jax.vmap(run)(jnp.array([0.1, -1e3, 0.2]))
    assert list(qs.status_names(batch.status)) == ["success", "diverged", "success"]
    assert batch.num_steps[1] < 10_000  # a blow-up stops at once, not at max_steps
    # to the rounding of the batched stage sums (test_jit_matches_no_jit_and_vmap_matches_loop)
    np.testing.assert_allclose(batch.states.cov[2], run(0.2).states.cov, rtol=1e-8)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ts=jnp.array([0.0, 2.0, 1.0])), "ts must be strictly increasing"),
        (dict(ts=jnp.zeros((2, 2))), "ts must be a non-empty 1-D"),
        (dict(ts=jnp.array([1.0, jnp.nan])), "finite"),
        (dict(ts=jnp.array([1.0, 2.0]), t0=1.5), "t0"),
        (
            dict(ts=jnp.array([1.0]), state0=qs.GaussianState(jnp.zeros(4), jnp.eye(4))),
            "state0 must have mean of shape",
        ),
    ],
)
def test_bad_input(kwargs, match):
    kwargs.setdefault("state0", STATE0)
    with pytest.raises(ValueError, match=match):
        qs.evolve(MODEL, **kwargs)


def test_bad_window():
    with pytest.raises(ValueError, match="window"):
        qs.time_average(MODEL, x_variance, (5.0, 1.0), state0=STATE0)
    with pytest.raises(ValueError, match="window"):
        qs.time_average(MODEL, x_variance, (1.0, 2.0, 3.0), state0=STATE0)


def test_trajectory_repr_names_the_status():
    traj = qs.evolve(MODEL, jnp.array([0.5, 1.0]), state0=STATE0)
    assert "status='success'" in repr(traj)
    batched = jax.vmap(lambda s: qs.evolve(MODEL, jnp.array([s]), state0=STATE0))(
        jnp.array([0.5, 1.0]))
    assert "status='success: 2'" in repr(batched)
