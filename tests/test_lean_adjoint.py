"""Reverse mode of the lean loop (the discrete adjoint of its accepted steps) against forward
mode through the loop, Diffrax's own reverse mode, finite differences, and itself with other
checkpoint counts; end points, closed-over parameters and vmap."""

import functools

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsync_jax as qs
from qsync_jax._lean import _segments, lean_solve

PAIR = qs.optomechanical_pair(**qs.MARI2013_FIG2)
WINDOW = (10.0, 20.0)
P = jnp.array([PAIR.mu, 48.0])


def phase_sync_mech(t, state):
    return qs.phase_sync(state, 1, 3)


def average(p, adjoint=dfx.RecursiveCheckpointAdjoint(), window=WINDOW, loop="auto",
            max_steps=100_000, throw=True):
    """S̄_p of the mechanical modes of the Fig. 2(a) pair as a function of (μ, E)."""
    model = eqx.tree_at(lambda m: (m.mu, m.E), PAIR, (p[0], jnp.broadcast_to(p[1], (2,))))
    config = qs.SolverConfig(rtol=1e-9, atol=1e-9, adjoint=adjoint, loop=loop,
                             max_steps=max_steps)
    return qs.time_average(model, phase_sync_mech, window, config=config, throw=throw).value


@pytest.mark.slow  # the default suite checks pair gradients in test_integrate, test_optomechanics
def test_pair_reverse_equals_forward_mode_through_the_loop():
    # Both differentiate the same steps (the controller's step-size factor carries no
    # derivative): they agree to rounding, far below the solver's tolerance.
    value, gradient = jax.value_and_grad(average)(P)
    forward = jax.jacfwd(functools.partial(average, adjoint=dfx.ForwardMode()))(P)
    np.testing.assert_allclose(gradient, forward, rtol=1e-8)
    assert float(value) == pytest.approx(float(average(P)), rel=1e-14)


@pytest.mark.slow
def test_pair_reverse_equals_diffrax_reverse_mode_and_window_differences():
    np.testing.assert_allclose(jax.grad(average)(P),
                               jax.grad(functools.partial(average, loop="diffrax"))(P),
                               rtol=1e-7)
    # t_a ends the transient and starts the window; t_b ends the window and divides the integral
    w = jnp.array(WINDOW)
    of_window = lambda w: average(P, window=(w[0], w[1]))  # noqa: E731
    gradient, h = jax.grad(of_window)(w), 1e-3
    for k in range(2):
        e = jnp.zeros(2).at[k].set(h)
        fd = (of_window(w + e) - of_window(w - e)) / (2 * h)
        np.testing.assert_allclose(gradient[k], fd, rtol=1e-5, atol=1e-9)


# ------------------------------------------------------- a small non-autonomous system
# Tsit5: a tableau that reuses its last stage (FSAL), unlike the Dopri8 above.

def field(t, y, k):
    """y' = −k₀ y + k₁ sin(t) y₀ (y of two entries): time-dependent and coupled."""
    return -k[0] * y + k[1] * jnp.sin(t) * y[::-1]


def final(k, t0=0.0, t1=3.0, adjoint=dfx.RecursiveCheckpointAdjoint(), max_steps=1000,
          scale=1.0, save=lambda t, y, k: y, stop=None):
    def scaled(t, y, k):
        return scale * field(t, y, k)

    sol = lean_solve(scaled, jnp.array([1.0, 2.0]), jnp.asarray(t0), jnp.asarray(t1), k,
                     solver=dfx.Tsit5(), controller=dfx.PIDController(rtol=1e-10, atol=1e-10),
                     adjoint=adjoint, max_steps=max_steps, dt0=None, save=save, stop=stop)
    return jnp.sum(jnp.cos(sol.ys[-1]))


K = jnp.array([0.7, 0.4])


def central(f, x, h=1e-5):
    return (f(x + h) - f(x - h)) / (2 * h)


def test_segments_cover_the_step_budget():
    for max_steps, checkpoints in [(1, None), (10, None), (1_000_000, None), (5_000, 7), (9, 9)]:
        count, per = _segments(max_steps, checkpoints)
        assert count * per >= max_steps and per >= 1
    assert _segments(1_000_000, None) == (1000, 1000)


@pytest.mark.parametrize("checkpoints", [7, pytest.param(None, marks=pytest.mark.slow),
                                         pytest.param(1, marks=pytest.mark.slow),
                                         pytest.param(1000, marks=pytest.mark.slow)])
def test_any_number_of_checkpoints_equals_forward_mode(checkpoints):
    # None: √max_steps; 1: one segment of max_steps; 7: several, the last partial; 1000: one
    # step each.
    adjoint = dfx.RecursiveCheckpointAdjoint(checkpoints=checkpoints)
    reverse = jax.jit(jax.grad(functools.partial(final, adjoint=adjoint)))(K)
    forward = jax.jit(jax.jacfwd(functools.partial(final, adjoint=dfx.ForwardMode())))(K)
    np.testing.assert_allclose(reverse, forward, rtol=1e-12)


@pytest.mark.parametrize("save", [lambda t, y, k: y * t,
                                  pytest.param(lambda t, y, k: y, marks=pytest.mark.slow)],
                         ids=["time-dependent", "state"])
def test_end_points_match_central_differences(save):
    of_ends = jax.jit(lambda t0, t1: final(K, t0, t1, save=save))
    g0, g1 = jax.jit(jax.grad(of_ends, argnums=(0, 1)))(0.5, 3.0)
    np.testing.assert_allclose(g0, central(lambda t0: of_ends(t0, 3.0), 0.5), rtol=1e-6)
    np.testing.assert_allclose(g1, central(lambda t1: of_ends(0.5, t1), 3.0), rtol=1e-6)


def test_a_solve_stopped_early_does_not_depend_on_t1():
    stop = lambda t, y, k: y[0] < 0.5  # noqa: E731  (reached near t = 1)
    g1 = jax.jit(jax.grad(lambda t1: final(K, 0.0, t1, stop=stop)))(3.0)
    assert float(g1) == 0.0


def test_closed_over_values_are_differentiated():
    of_scale = jax.jit(lambda k, s: final(k, scale=s))
    gk, gs = jax.jit(jax.grad(of_scale, argnums=(0, 1)))(K, 1.3)
    np.testing.assert_allclose(gs, central(lambda s: of_scale(K, s), 1.3), rtol=1e-6)
    np.testing.assert_allclose(gk, jax.jacfwd(
        lambda k: final(k, scale=1.3, adjoint=dfx.ForwardMode()))(K), rtol=1e-12)


def test_vmapped_gradients_equal_single_ones():
    # Lanes of different lengths (t1 = 3 and 30) run through different numbers of segments.
    ks, t1s = jnp.stack([K, 0.5 * K, 0.25 * K]), jnp.array([3.0, 30.0, 10.0])
    adjoint = dfx.RecursiveCheckpointAdjoint(checkpoints=40)
    gradient = jax.grad(lambda k, t1: final(k, 0.0, t1, adjoint=adjoint, max_steps=4000))
    batched, single = jax.jit(jax.vmap(gradient)), jax.jit(gradient)
    got = batched(ks, t1s)
    for k in range(3):  # batched stage sums round differently: steps may differ slightly
        np.testing.assert_allclose(got[k], single(ks[k], t1s[k]), rtol=1e-9)
