"""Regression tests: failures are statuses with NaN values or clear errors, never numbers.

Traced time arguments, physicality and the regime of the linearization, undefined measures,
solver settings, the log-negativity at large squeezing (closed forms), and explicit initial
phases of the phase-locking value. Hostile input to every public function: test_bad_input.py.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsync_jax as qs
from qsync_jax import _checks

PAIR = dict(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, mu=0.02, n_th=0.0)
BATH = qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.0, gamma=0.5, xi=0.5, n_th=(0.0, 0.0))


def test_chaotic_mean_field_is_not_success():
    """E = 320: C grows like 1e18 by t = 40 (positive Lyapunov exponent) — never `success`."""
    traj = qs.evolve(qs.optomechanical_pair(E=320.0, **PAIR), jnp.linspace(5.0, 60.0, 12),
                     throw=False)
    assert qs.status_names(traj.status) == "linearization_broken"
    first_bad = int(np.argmax(np.isnan(np.asarray(traj.states.cov[:, 0, 0]))))
    assert first_bad > 0  # saves before the breakdown are kept, later ones are NaN
    assert np.all(np.isnan(np.asarray(traj.states.cov[first_bad:])))
    with pytest.raises(Exception, match="linearization"):
        qs.evolve(qs.optomechanical_pair(E=320.0, **PAIR), jnp.asarray([60.0]))


def test_fig2a_limit_cycle_stays_success():
    """E = 48 (Mari et al. Fig. 2(a)): physical, linearized regime up to t = 2000."""
    traj = qs.evolve(qs.optomechanical_pair(E=48.0, **PAIR), jnp.linspace(1000.0, 2000.0, 5))
    assert qs.status_names(traj.status) == "success"
    model = qs.optomechanical_pair(E=48.0, **PAIR)
    floor = _checks.noise_floor(model, model.initial_state())
    ratios = jax.vmap(lambda s: _checks.health(model, s, floor))(traj.states)
    assert np.all(np.asarray(ratios[:, 1]) < 0.05)  # N_fl / (ε N_mf + N_floor), bound 1
    assert np.all(np.asarray(ratios[:, 0]) <= _checks.PHYSICAL_RTOL)


@pytest.mark.slow
def test_fig2a_window_average_stays_success():
    avg = qs.time_average(qs.optomechanical_pair(E=48.0, **PAIR), qs.SyncMeasures((1, 3)),
                          (1000.0, 2000.0))
    assert qs.status_names(avg.status) == "success"
    assert np.all(np.isfinite(avg.value["complete_sync"]))


def test_unphysical_saves_are_reported():
    """A state0 that is physical but evolved by a drift that squeezes beyond the bound cannot
    occur; a save made unphysical by hand must be caught by the per-save check."""
    h = _checks.health(BATH, qs.GaussianState(mean=jnp.zeros(4), cov=0.3 * jnp.eye(4)), 2.0)
    assert _checks._health_code(h) == qs.Status.unphysical._value
    h = _checks.health(BATH, qs.vacuum(2), 2.0)
    assert _checks._health_code(h) == qs.Status.success._value


def test_unphysical_state0_is_refused():
    bad = qs.GaussianState(mean=jnp.zeros(4), cov=0.3 * jnp.eye(4))
    with pytest.raises(ValueError, match="state0 is not a physical state"):
        qs.evolve(BATH, jnp.asarray([1.0]), state0=bad)


def test_undefined_measure_fails_at_once_with_nan():
    """Zero mean field: S_p undefined. A status of its own, NaN values, no step-budget failure."""
    avg = qs.time_average(BATH, qs.SyncMeasures((0, 1)), (1.0, 2.0), throw=False)
    assert qs.status_names(avg.status) == "undefined_measure"
    assert np.isnan(avg.value["phase_sync"]).all() and np.isnan(avg.value["complete_sync"]).all()
    assert int(avg.num_steps) < 1000


def test_failed_average_values_are_nan_not_partial():
    config = qs.SolverConfig(max_steps=3)
    avg = qs.time_average(BATH, qs.SyncMeasures((0, 1)), (1.0, 20.0), config=config, throw=False)
    assert qs.status_names(avg.status) == "max_steps_reached"
    assert all(np.isnan(v).all() for v in avg.value.values())


@pytest.mark.parametrize("kw", [dict(rtol=0.0), dict(atol=-1.0), dict(rtol=float("nan")),
                                dict(max_steps=0), dict(max_steps=2.5), dict(dt0=-1.0),
                                dict(dt0=float("inf"))])
def test_solver_config_is_validated(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        qs.SolverConfig(**kw)


def test_float32_warns_once(monkeypatch):
    monkeypatch.setattr(_checks, "_warned_precision", False)
    monkeypatch.setattr(jnp, "result_type", lambda *a: jnp.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _checks.warn_precision(qs.SolverConfig())
        _checks.warn_precision(qs.SolverConfig())
        _checks.warn_precision(qs.SolverConfig(rtol=1e-5, atol=1e-5))
    assert len(caught) == 1 and "float32" in str(caught[0].message)


@pytest.mark.parametrize("r", [0.3, 3.0, 8.0, 10.0, 15.0])
def test_log_negativity_of_two_mode_squeezed_vacuum_is_2r(r):
    cov = qs.two_mode_squeezed(r).cov
    np.testing.assert_allclose(qs.log_negativity(cov), 2.0 * r, rtol=1e-9)


@pytest.mark.parametrize("r,n", [(0.5, 0.2), (3.0, 0.5), (6.0, 2.0)])
def test_log_negativity_thermal_two_mode_squeezed(r, n):
    """ν̃₋ = (n̄ + ½) e^{−2r}: E_N = max(0, 2r − ln(2n̄ + 1)), to the rounding of det C of mixed
    states, ~ε·e^{4r} relative (pure states are exact: the test above)."""
    expected = max(0.0, 2 * r - np.log(2 * n + 1))
    rtol = max(1e-9, 10 * np.finfo(float).eps * np.exp(4 * r))
    np.testing.assert_allclose(qs.log_negativity(qs.two_mode_squeezed(r, n).cov), expected,
                               rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("r", [3.0, 8.0])
def test_pure_state_entropies_at_large_squeezing(r):
    """Pure: S = 0, purity 1, I = 2 S(ρ_a) = 2 f(cosh 2r / 2), discord = S(ρ_a)."""
    cov = qs.two_mode_squeezed(r).cov
    nu = np.cosh(2 * r) / 2
    s_a = np.log(nu + 0.5) + (nu - 0.5) * np.log1p(1.0 / (nu - 0.5))
    assert qs.von_neumann_entropy(cov) == 0.0 and qs.purity(cov) == 1.0
    np.testing.assert_allclose(qs.mutual_information(cov), 2 * s_a, rtol=1e-9)
    np.testing.assert_allclose(qs.gaussian_discord(cov), s_a, rtol=1e-6)


@pytest.mark.parametrize("fn", [qs.log_negativity, qs.purity, qs.von_neumann_entropy,
                                qs.renyi2_entropy, qs.mutual_information, qs.gaussian_discord])
def test_indefinite_and_nan_give_nan_not_zero(fn):
    indefinite = jnp.diag(jnp.asarray([1.0, -1.0, 1.0, 1.0]))
    assert np.isnan(fn(indefinite))
    assert np.isnan(jax.jit(fn)(qs.two_mode_squeezed(0.5).cov.at[0, 0].set(jnp.nan)))


def test_solve_lyapunov_without_unique_solution_is_nan():
    A = jnp.asarray([[0.0, 1.0], [-1.0, 0.0]])  # eigenvalues ±i sum to zero
    assert np.isnan(qs.solve_lyapunov(A, jnp.eye(2))).all()


def test_phase_locking_value_with_explicit_phases_matches_key():
    key = jax.random.PRNGKey(3)
    theta = jax.random.uniform(key, (20, 2), jnp.float64, 0.0, 2.0 * np.pi)
    kw = dict(t1=5.0, t2=30.0, n_panels=64)
    np.testing.assert_allclose(
        qs.phase_locking_value(BATH, key, n_samples=20, **kw),
        qs.phase_locking_value(BATH, phases=theta, **kw), rtol=1e-12)
    one = qs.phase_locking_value(BATH, phases=jnp.asarray([0.0, np.pi]), **kw)
    assert np.isfinite(one)
    with pytest.raises(ValueError, match="phases"):
        qs.phase_locking_value(BATH, phases=jnp.zeros((2, 3)), **kw)
