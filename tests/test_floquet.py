"""Periodic orbits, Floquet data, phase diffusion and Floquet window averages.

References: the monodromy by central finite differences of the direct integrator's flow
(`qs.evolve`), the covariance of a direct solve along the orbit, the direct window average
(`qs.time_average`), finite-difference gradients.
"""

import dataclasses
import json

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsync_jax as qs

PAPER = dict(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02, n_th=0.0)
PAIR = qs.optomechanical_pair(**PAPER)
MEASURES = qs.SyncMeasures((1, 3))


@pytest.fixture(scope="module")
def orbit():
    return qs.periodic_orbit(PAIR)


def test_orbit_is_periodic_and_locked(orbit):
    assert qs.status_names(orbit.status) == "success"
    T = float(orbit.period)
    assert 6.3 < T < 6.6  # locked at ≈ 0.976, the optical spring included
    x_T = qs.evolve(PAIR, jnp.array([T]), state0=qs.GaussianState(orbit.point, orbit.state.cov),
                    config=qs.SolverConfig(rtol=1e-11, atol=1e-11)).states.mean[0]
    assert np.linalg.norm(x_T - orbit.point) < 1e-7 * np.linalg.norm(orbit.point)
    mult = np.asarray(orbit.multipliers)
    assert abs(mult[0] - 1) < 1e-6 and np.all(np.abs(mult[1:]) < 1)


def test_multipliers_match_finite_difference_monodromy(orbit):
    """Eigenvalues of ∂φ_T/∂u by central differences of the direct integrator's flow."""
    T, x = orbit.period, orbit.point
    cov = orbit.state.cov
    config = qs.SolverConfig(rtol=1e-12, atol=1e-12)
    h = 1e-3

    def flow(x0):
        return qs.evolve(PAIR, jnp.array([T]), state0=qs.GaussianState(x0, cov),
                         config=config).states.mean[0]

    eye = jnp.eye(x.shape[0])
    M = (jax.vmap(flow)(x + h * eye) - jax.vmap(flow)(x - h * eye)).T / (2 * h)
    np.testing.assert_allclose(M, orbit.monodromy, atol=1e-6 * np.abs(M).max())
    fd = np.linalg.eigvals(np.asarray(M))
    for lam in np.asarray(orbit.multipliers):
        assert np.min(np.abs(fd - lam)) < 1e-5
    f = PAIR.mean_field(0.0, x)
    np.testing.assert_allclose(orbit.monodromy @ f, f, rtol=1e-6)
    np.testing.assert_allclose(orbit.phase_response @ f, 1.0, rtol=1e-12)


def test_phase_diffusion_matches_direct_variance_growth(orbit):
    """Zᵀ C Z of a direct covariance solve grows by Zᵀ Q Z per period (Var θ = rate · t)."""
    T, Z = float(orbit.period), np.asarray(orbit.phase_response)
    ts = orbit.t_anchor + T * jnp.array([50.0, 150.0])
    traj = qs.evolve(PAIR, ts, state0=qs.GaussianState(orbit.point, orbit.state.cov),
                     t0=float(orbit.t_anchor))
    var = np.einsum("i,kij,j->k", Z, np.asarray(traj.states.cov), Z)
    rate = (var[1] - var[0]) / (100 * T)
    D_phi = 0.5 * (2 * np.pi / T) ** 2 * rate
    np.testing.assert_allclose(D_phi, orbit.phase_diffusion, rtol=1e-4)
    # the recurrence itself: Zᵀ Q Z per period
    np.testing.assert_allclose(rate * T, Z @ np.asarray(orbit.noise) @ Z, rtol=1e-4)


@pytest.mark.parametrize("n_samples, rtol", [(64, 3e-4), (256, 1e-6), (1024, 1e-8)])
def test_period_guess_interpolates_the_last_section_crossing(n_samples, rtol):
    from qsync_jax._floquet import _period_guess

    # An ellipse traversed with period 2π/1.3, sampled off-phase; the cubic Hermite
    # interpolation of the crossing converges as spacing⁴ (linear interpolation: spacing²).
    omega = 1.3
    ts = jnp.linspace(0.37, 40.37, n_samples)
    means = jnp.stack([2.0 * jnp.cos(omega * ts), jnp.sin(omega * ts)], axis=1)
    rates = omega * jnp.stack([-2.0 * jnp.sin(omega * ts), jnp.cos(omega * ts)], axis=1)
    guess, found = _period_guess(ts, means, rates, means[-1], rates[-1], 100.0)
    assert bool(found)
    np.testing.assert_allclose(guess, 2 * np.pi / omega, rtol=rtol)
    # No crossing in the samples: the guess is period_max.
    guess, found = _period_guess(ts[:3], means[:3], rates[:3], means[2], rates[2], 100.0)
    assert not bool(found) and float(guess) == 100.0


@pytest.mark.parametrize("kind", ["lax", "checkpointed"])
def test_affine_power_equals_repeated_composition(kind):
    """(M, Q) composed k times by binary powers (over k's bits only) equals k steps
    C ↦ M C Mᵀ + Q, k = 0 included; derivatives agree between the loop kinds."""
    from qsync_jax._floquet import _affine_power

    rng = np.random.default_rng(0)
    M, Q = 0.4 * rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    Q = Q @ Q.T
    power = jax.jit(_affine_power, static_argnums=3)
    for k in (0, 1, 2, 7, 100):
        R_M, R_Q = np.eye(4), np.zeros((4, 4))
        for _ in range(k):
            R_M, R_Q = M @ R_M, M @ R_Q @ M.T + Q
        P_M, P_Q = power(jnp.asarray(M), jnp.asarray(Q), jnp.asarray(k), kind)
        np.testing.assert_allclose(P_M, R_M, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(P_Q, R_Q, rtol=1e-12, atol=1e-14)
    grad = jax.grad if kind == "checkpointed" else jax.jacfwd
    d = grad(lambda m: jnp.sum(_affine_power(m, jnp.asarray(Q), jnp.asarray(5), kind)[1]))(
        jnp.asarray(M))
    h = 1e-6
    e = np.zeros((4, 4))
    e[1, 2] = h
    f = lambda m: float(jnp.sum(_affine_power(jnp.asarray(m), jnp.asarray(Q), jnp.asarray(5),  # noqa: E731
                                              kind)[1]))
    np.testing.assert_allclose(d[1, 2], (f(M + e) - f(M - e)) / (2 * h), rtol=1e-6)


@pytest.mark.parametrize("mu", [0.1])
def test_unlocked_pair_has_no_orbit(mu):
    model = dataclasses.replace(PAIR, mu=jnp.asarray(mu))
    orbit = qs.periodic_orbit(model, throw=False)
    assert qs.status_names(orbit.status) in ("no_periodic_orbit", "unstable_periodic_orbit")
    assert np.isnan(orbit.period) and np.all(np.isnan(orbit.multipliers))


@pytest.mark.slow
def test_chaotic_pair_has_no_orbit():
    """E = 320 in eq. (9) units: chaotic mean field (positive Lyapunov exponent)."""
    model = dataclasses.replace(PAIR, E=jnp.full(2, 320.0))
    orbit = qs.periodic_orbit(model, throw=False)
    assert qs.status_names(orbit.status) in ("no_periodic_orbit", "unstable_periodic_orbit")
    avg = qs.time_average(model, MEASURES, (1000.0, 1100.0), method="floquet", throw=False)
    assert qs.status_names(avg.status) != "success"
    assert np.all(np.isnan(avg.value["complete_sync"]))
    with pytest.raises(Exception, match="periodic orbit"):
        qs.periodic_orbit(model)


@pytest.mark.slow
@pytest.mark.parametrize(
    "window", [(1000.0, 2000.0), (2000.0, 4000.0), (1001.3, 1003.0), (700.0, 737.0)]
)
def test_window_average_matches_direct_solve(window):
    direct = qs.time_average(PAIR, MEASURES, window)
    floquet = qs.time_average(PAIR, MEASURES, window, method="floquet")
    for key in ("complete_sync", "phase_sync"):
        np.testing.assert_allclose(floquet.value[key], direct.value[key], rtol=1e-6)
    np.testing.assert_allclose(floquet.state.cov, direct.state.cov, rtol=1e-5,
                               atol=1e-5 * np.abs(direct.state.cov).max())


def test_short_transient_is_corrected_to_first_order():
    """From t_s = 250 the trajectory is still 7e-4 (relative) off the orbit; without the
    first-order settling correction (its phase offset and its decaying part) S̄_c over
    [700, 800] is 2.2e-6 off the direct solve, with it 2e-8 (both solves at rtol 1e-11)."""
    tight = qs.SolverConfig(rtol=1e-11, atol=1e-11)
    window = (700.0, 800.0)
    direct = qs.time_average(PAIR, MEASURES, window, config=tight)
    floquet = qs.time_average(PAIR, MEASURES, window, method="floquet", t_transient=250.0,
                              config=tight)
    for key in ("complete_sync", "phase_sync"):
        np.testing.assert_allclose(floquet.value[key], direct.value[key], rtol=2e-7)


def test_settling_correction_linear_form_equals_per_period_form(orbit):
    """The correction's period integrals taken once along 2n directions (linear in the offset)
    equal those taken along each period's offset at every node."""
    from qsync_jax._floquet import _settled_covariance

    tau, f = 0.3, PAIR.mean_field(0.0, orbit.point)
    offset = 1e-3 * jnp.linalg.norm(orbit.point) * jnp.linspace(-1.0, 1.0, f.shape[0])

    def settled(offset, linear):  # e = δ − τf = offset
        state = qs.GaussianState(orbit.point + tau * f + offset, orbit.state.cov)
        return _settled_covariance(PAIR, dataclasses.replace(orbit, state=state), tau,
                                   jnp.asarray(40), 48, linear=linear)

    base, _ = settled(0.0 * offset, True)
    (linear, n), (per_period, _) = settled(offset, True), settled(offset, False)
    assert int(n) == 40
    correction = np.asarray(linear - base)
    assert np.abs(correction).max() > 1e-6 * np.abs(np.asarray(base)).max()
    np.testing.assert_allclose(correction, per_period - base, rtol=1e-8,
                               atol=1e-10 * np.abs(correction).max())


@pytest.mark.slow
def test_window_average_of_a_small_ring():
    ring = qs.optomechanical_ring(3, **{**PAPER, "omega": 1.0, "mu": 0.02})
    measures = qs.SyncMeasures([(1, 3), (1, 5)])
    window = (800.0, 1200.0)
    with pytest.raises(TypeError, match="to_network"):
        qs.time_average(ring, measures, window, method="floquet")
    ring = ring.to_network()
    direct = qs.time_average(ring, measures, window)
    floquet = qs.time_average(ring, measures, window, method="floquet")
    for key in ("complete_sync", "phase_sync"):
        np.testing.assert_allclose(floquet.value[key], direct.value[key], rtol=1e-6)


@pytest.mark.slow
def test_floquet_average_under_vmap_gives_status_per_point():
    models = jax.vmap(lambda mu: dataclasses.replace(PAIR, mu=mu))(jnp.array([0.02, 0.1]))

    def average(model):
        return qs.time_average(model, MEASURES, (600.0, 700.0), method="floquet", throw=False)

    out = jax.vmap(average)(models)
    names = qs.status_names(out.status)
    assert names[0] == "success" and names[1] != "success"
    single = qs.time_average(PAIR, MEASURES, (600.0, 700.0), method="floquet")
    np.testing.assert_allclose(out.value["complete_sync"][0], single.value["complete_sync"],
                               rtol=1e-10)
    assert np.isnan(out.value["complete_sync"][1]).all()


def test_window_longer_than_max_periods_is_a_status_not_a_truncated_average():
    window = (600.0, 700.0)  # 15 whole periods of 6.44
    ok = qs.time_average(PAIR, MEASURES, window, method="floquet", max_periods=16)
    short = qs.time_average(PAIR, MEASURES, window, method="floquet", max_periods=10,
                            throw=False)
    assert qs.status_names(short.status) == "max_steps_reached"
    assert np.isnan(short.value["complete_sync"]).all()
    assert np.isfinite(ok.value["complete_sync"]).all()
    with pytest.raises(Exception, match="max_periods"):
        qs.time_average(PAIR, MEASURES, window, method="floquet", max_periods=10)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_derivatives_match_finite_differences(mode):
    """d/dμ of the period, D_φ, the phase offset (implicit function theorem) and of a Floquet
    window average, by jax.jacfwd (ForwardMode solves) and jax.jacrev (checkpointed solves).
    From t_s = 250 the trajectory is still off the orbit, so the settling correction and the
    phase offset's derivative (straight through the propagator solve's monodromy, and the
    window nodes' save times) count: without the latter the average's was 2e-4 off."""
    adjoint = dfx.ForwardMode() if mode == "forward" else dfx.RecursiveCheckpointAdjoint()
    config = qs.SolverConfig(adjoint=adjoint)
    options = qs.OrbitOptions(config=qs.SolverConfig(rtol=1e-11, atol=1e-11, adjoint=adjoint))

    def orbit(mu):
        model = dataclasses.replace(PAIR, mu=mu)
        o = qs.periodic_orbit(model, t_transient=250.0, config=config, options=options)
        return jnp.stack([o.period, o.phase_diffusion, o.phase_offset])

    def average(mu):
        model = dataclasses.replace(PAIR, mu=mu)
        avg = qs.time_average(model, MEASURES, (1000.0, 1100.0), method="floquet",
                              t_transient=250.0, config=config, options=options)
        return jnp.stack([avg.value["complete_sync"][0], avg.value["phase_sync"][0]])

    jac = jax.jacfwd if mode == "forward" else jax.jacrev
    mu, h = jnp.asarray(0.02), 1e-5
    for f, rtol in ((orbit, np.array([2e-5, 2e-5, 1e-4])), (average, 2e-5)):
        fd = (f(mu + h) - f(mu - h)) / (2 * h)
        assert np.all(np.abs(np.asarray(jac(f)(mu)) / np.asarray(fd) - 1) <= rtol)


# ----------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "window, match",
    [((2000.0, 1000.0), "increasing"), ((np.nan, 10.0), "finite"), ((1.0, 2.0, 3.0), "window"),
     ((-5.0, 10.0), "t0")],
)
def test_bad_windows_are_rejected(window, match):
    with pytest.raises(ValueError, match=match):
        qs.time_average(PAIR, MEASURES, window, method="floquet")


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(t_transient=np.nan), "t_transient"), (dict(t_transient=-1.0), "t_transient"),
     (dict(t_transient=jnp.ones(2)), "t_transient"),
     (dict(options=qs.OrbitOptions(period_max=-1.0)), "period_max"),
     (dict(options=qs.OrbitOptions(panels=0)), "panels"), (dict(options=3), "OrbitOptions"),
     (dict(max_periods=0), "max_periods")],
)
def test_bad_floquet_options_are_rejected(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        qs.time_average(PAIR, MEASURES, (1000.0, 2000.0), method="floquet", **kwargs)


def test_bad_orbit_arguments_are_rejected():
    with pytest.raises(ValueError, match="t_transient"):
        qs.periodic_orbit(PAIR, t_transient=np.inf)
    with pytest.raises(TypeError, match="model"):
        qs.periodic_orbit("pair")
    with pytest.raises(ValueError, match="state0"):
        qs.periodic_orbit(PAIR, state0=qs.vacuum(3))
    with pytest.raises(TypeError, match="state0"):
        qs.periodic_orbit(PAIR, state0=PAIR.initial_state().cov)
    with pytest.raises(ValueError, match="method"):
        qs.time_average(PAIR, MEASURES, (1.0, 2.0), method="fourier")
    with pytest.raises(ValueError, match="method"):
        qs.time_average(PAIR, MEASURES, (1.0, 2.0), t_transient=5.0)


# ----------------------------------------------------------------------------- Lyapunov exponent


def test_lyapunov_exponent_of_a_linear_model_is_its_spectral_abscissa():
    model = qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.1, gamma=0.5, xi=0.3,
                                         n_th=(0.0, 0.0))
    expected = np.max(np.linalg.eigvals(np.asarray(model.drift_matrix())).real)
    result = qs.lyapunov_exponent(model, t_start=10.0, t_end=410.0, renormalize=2.0,
                                  mean0=jnp.array([1.0, 0.0, 0.5, 0.2]))
    assert qs.status_names(result.status) == "success"
    # finite-time estimate: error ~ ln(projection on the slowest mode) / 400
    np.testing.assert_allclose(result.value, expected, atol=5e-3)


@pytest.mark.slow
def test_lyapunov_exponent_chaos_and_limit_cycle():
    """E = 320: chaotic, λ ≈ 0.38 over [100, 400]; E = 48 (limit cycle): λ ≈ 0."""
    chaotic = qs.lyapunov_exponent(dataclasses.replace(PAIR, E=jnp.full(2, 320.0)))
    assert 0.3 < float(chaotic.value) < 0.5
    cycle = qs.lyapunov_exponent(PAIR, t_start=500.0, t_end=2000.0)
    assert abs(float(cycle.value)) < 5e-3


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(t_start=np.nan), "t_start"), (dict(t_start=500.0, t_end=400.0), "t_start"),
     (dict(renormalize=0.0), "renormalize"), (dict(renormalize=0.7), "whole number"),
     (dict(tangent0=jnp.zeros(8)), "tangent0"), (dict(tangent0=jnp.ones(3)), "tangent0"),
     (dict(mean0=jnp.ones(3)), "state0")],
)
def test_bad_lyapunov_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        qs.lyapunov_exponent(PAIR, **kwargs)


def test_sync_measures_absolute_option():
    state = qs.GaussianState(jnp.array([0.1, 0.2, 0.3, 0.4, 1.0, -1.0, 0.5, 0.0]),
                             0.5 * jnp.eye(8) + 0.01)
    relative = qs.SyncMeasures((1, 3))(0.0, state)["complete_sync"]
    absolute = qs.SyncMeasures((1, 3), relative=False)(0.0, state)["complete_sync"]
    np.testing.assert_allclose(absolute, qs.complete_sync(state, 1, 3, relative=False))
    variance = 1.0 / relative + 0.5 * ((0.3 - 0.5) ** 2 + (0.4 - 0.0) ** 2)
    np.testing.assert_allclose(absolute, 1.0 / variance, rtol=1e-12)
    with pytest.raises(ValueError, match="relative"):
        qs.SyncMeasures((1, 3), relative="no")


def test_simulate_reports_the_absolute_complete_sync(capsys):
    """`qsync simulate` gives S_c of eq. (1) (means included) beside the relative S_c."""
    from qsync_jax._cli import main

    argv = ["simulate", "--model", "pair", "--t-final", "60", "--average-from", "50",
            "--rtol", "1e-6", "--atol", "1e-6"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    absolute = qs.SyncMeasures((1, 3), relative=False)
    avg = qs.time_average(PAIR, absolute, (50.0, 60.0),
                          config=qs.SolverConfig(rtol=1e-6, atol=1e-6))
    mean = result["window_mean"]
    assert mean["S_c_absolute"] == pytest.approx(float(avg.value["complete_sync"][0]), rel=1e-10)
    assert mean["S_c_absolute"] < mean["S_c"]  # the unequal orbits' mean difference counts
    end = qs.complete_sync(avg.state, 1, 3, relative=False)
    assert result["end_of_window"]["S_c_absolute"] == pytest.approx(float(end), rel=1e-10)


def _floquet_fn(model):
    return qs.time_average(model, MEASURES, (600.0, 700.0), method="floquet", throw=False)


@pytest.mark.slow
def test_floquet_average_in_a_sweep():
    data = qs.sweep(_floquet_fn, PAIR, {"mu": [0.02, 0.1]}, mode="zip", progress=False)
    single = qs.time_average(PAIR, MEASURES, (600.0, 700.0), method="floquet")
    np.testing.assert_allclose(data["complete_sync"].values[0], single.value["complete_sync"],
                               rtol=1e-10)
    assert list(data["status"].values) == ["success", "unstable_periodic_orbit"]
    assert np.isnan(data["complete_sync"].values[1]).all()
