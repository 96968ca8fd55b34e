"""qs.optimize: convergence to known optima, constraints, batching, failures, bad input."""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import DampedOscillator, x_variance
from scipy.integrate import quad

import qsync_jax as qs

MODEL = DampedOscillator(1.0, 0.1, 2.0, 0.05)
PAIR = qs.optomechanical_pair(**qs.MARI2013_FIG2)


def quadratic(model):
    """Unique minimum at force = 0.3, gamma = 0.2."""
    return (model.force - 0.3) ** 2 + (model.gamma - 0.2) ** 2


def negative_quadratic(model):
    return -quadratic(model)


def test_converges_to_known_minimum_and_history_is_consistent():
    model, history = qs.optimize(
        quadratic, MODEL, ["force", "gamma"], steps=300, progress=False
    )
    np.testing.assert_allclose([model.force, model.gamma], [0.3, 0.2], atol=1e-3)
    assert history.objective.shape == history.grad_norm.shape == (301,)
    assert history.params["gamma"].shape == (301,)
    np.testing.assert_allclose(history.params["force"][0], 0.05)
    np.testing.assert_allclose(history.params["gamma"][-1], model.gamma)
    np.testing.assert_allclose(history.objective[-1], quadratic(model), rtol=1e-12)
    assert history.objective[-1] < 1e-6 * history.objective[0]
    assert int(history.num_steps) == 300 and not history.stopped
    # untouched parameters stay as they were
    assert model.omega == MODEL.omega and model.n_th == MODEL.n_th


def test_grad_norm_is_that_of_the_unconstrained_variables():
    # force is unbounded with scale |0.05|: force = 0.05 z, so |d obj/dz| = 0.05 |d obj/d force|
    _, history = qs.optimize(quadratic, MODEL, ["force"], steps=0, progress=False)
    np.testing.assert_allclose(history.grad_norm[0], 0.05 * abs(2 * (0.05 - 0.3)), rtol=1e-12)


def test_maximize_follows_the_same_path():
    _, low = qs.optimize(quadratic, MODEL, ["force", "gamma"], steps=20, progress=False)
    _, high = qs.optimize(
        negative_quadratic, MODEL, ["force", "gamma"], steps=20, progress=False, maximize=True
    )
    np.testing.assert_allclose(high.objective, -low.objective, rtol=1e-12)
    np.testing.assert_allclose(high.params["force"], low.params["force"], rtol=1e-12)


def test_progress_loop_matches_scan():
    kwargs = dict(steps=15, optimizer=optax.adam(0.1))
    _, scan = qs.optimize(quadratic, MODEL, ["force", "gamma"], progress=False, **kwargs)
    _, loop = qs.optimize(quadratic, MODEL, ["force", "gamma"], progress=True, **kwargs)
    for a, b in [(scan.objective, loop.objective), (scan.grad_norm, loop.grad_norm)]:
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_second_call_does_not_recompile():
    traces = []

    def counted(model):
        traces.append(None)
        return quadratic(model)

    qs.optimize(counted, MODEL, ["force"], steps=3, progress=False)
    first = len(traces)
    other = eqx.tree_at(lambda m: m.gamma, MODEL, jnp.asarray(0.3))
    qs.optimize(counted, other, ["force"], steps=3, progress=False)
    assert len(traces) == first
    # Positive control: another designed parameter is another program, traced again.
    qs.optimize(counted, other, ["gamma"], steps=3, progress=False)
    assert len(traces) > first


@pytest.mark.parametrize(
    "name, target, bounds, inside",
    [
        ("gamma", -1.0, None, lambda x: x > 0),  # default: positive via softplus
        ("gamma", 5.0, {"gamma": (0.05, 0.15)}, lambda x: (x > 0.05) & (x < 0.15)),
        ("force", 5.0, {"force": (-np.inf, 0.2)}, lambda x: x < 0.2),
    ],
)
def test_constraints_by_reparametrization(name, target, bounds, inside):
    """Pushed against a bound, the value approaches it monotonically and never crosses."""

    def objective(model):
        return (getattr(model, name) - target) ** 2

    model, history = qs.optimize(
        objective, MODEL, [name], steps=200, bounds=bounds, progress=False
    )
    values = history.params[name]
    assert np.all(inside(values))
    assert np.all(np.diff(history.objective) < 0)  # gradients are never killed
    lo, hi = (bounds or {}).get(name, (0.0, np.inf))
    edge = lo if target < lo else hi
    assert abs(float(getattr(model, name)) - edge) < 0.1 * abs(values[0] - edge)


def _xi_beyond_one(model):
    return (model.xi - 2.0) ** 2


def test_xi_stays_a_correlation_by_default():
    """ξ defaults to the tanh box (−1, 1): pushed towards 2 it approaches 1 from below."""
    model, history = qs.optimize(_xi_beyond_one, BATH, ["xi"], steps=200, progress=False)
    assert np.all(np.abs(history.params["xi"]) < 1.0) and float(model.xi) > 0.98
    assert np.all(np.diff(history.objective) < 0)


def test_shared_keeps_graph_and_each_designs_every_entry():
    def coupling(model):
        return (model.mu_matrix[0, 1] - 0.05) ** 2 + (model.mu_matrix[1, 0] - 0.05) ** 2

    model, _ = qs.optimize(coupling, PAIR, ["mu"], steps=300, progress=False)
    mu = np.asarray(model.mu_matrix)
    np.testing.assert_allclose(mu, mu.T)
    np.testing.assert_allclose(np.diag(mu), 0.0)
    np.testing.assert_allclose(mu[0, 1], 0.05, rtol=1e-3)

    def drives(model):
        return (model.E[0] - 40.0) ** 2 + (model.E[1] - 55.0) ** 2

    shared, _ = qs.optimize(drives, PAIR, ["E"], steps=300, progress=False)
    np.testing.assert_allclose(shared.E, [47.5, 47.5], rtol=1e-3)
    each, history = qs.optimize(drives, PAIR, {"E": "each"}, steps=300, progress=False)
    assert history.params["E"].shape == (301, 2)
    np.testing.assert_allclose(each.E, [40.0, 55.0], rtol=1e-3)


def test_batched_starts_match_separate_runs():
    inits = {"force": jnp.array([-0.4, 0.05, 1.0])}
    model, history = qs.optimize(
        quadratic, MODEL, ["force", "gamma"], steps=25, inits=inits, progress=False
    )
    assert model.force.shape == (3,) and model.omega.shape == (3,)
    assert history.objective.shape == (3, 26) and history.params["gamma"].shape == (3, 26)
    for b, f0 in enumerate(np.asarray(inits["force"])):
        start = eqx.tree_at(lambda m: m.force, MODEL, jnp.asarray(f0))
        single_model, single = qs.optimize(
            quadratic, start, ["force", "gamma"], steps=25, progress=False
        )
        np.testing.assert_allclose(history.objective[b], single.objective, rtol=1e-10)
        np.testing.assert_allclose(model.gamma[b], single_model.gamma, rtol=1e-10)
    assert history.best() == int(np.argmin(history.objective[:, -1]))
    _, looped = qs.optimize(
        quadratic, MODEL, ["force", "gamma"], steps=25, inits=inits, progress=True
    )
    np.testing.assert_allclose(looped.objective, history.objective, rtol=1e-12)


def test_batched_starts_escape_a_local_optimum():
    """Double well in force with minima at −0.5 (shallow) and +0.5 (deep)."""

    def double_well(model):
        f = model.force
        return (f**2 - 0.25) ** 2 - 0.05 * f

    inits = {"force": jnp.array([-0.6, -0.3, 0.2, 0.8])}
    model, history = qs.optimize(
        double_well, MODEL, ["force"], steps=300, inits=inits, progress=False,
        optimizer=optax.adam(0.02),
    )
    finals = np.asarray(model.force)
    assert np.any(finals < 0) and np.any(finals > 0)
    assert float(model.force[history.best()]) > 0.4


@pytest.mark.parametrize("progress", [False, True])
def test_nonfinite_step_stops_and_returns_last_good_model(progress):
    def cliff(model):  # NaN once force exceeds 0.2, on the way to the minimum at 0.5
        return jnp.where(model.force > 0.2, jnp.nan, (model.force - 0.5) ** 2)

    with pytest.warns(RuntimeWarning, match=r"stopped at step \d+: .*force="):
        model, history = qs.optimize(
            cliff, MODEL, ["force"], steps=200, optimizer=optax.sgd(1.0), progress=progress
        )
    k = int(history.num_steps)
    assert bool(history.stopped) and 0 < k < 200
    assert float(model.force) <= 0.2
    np.testing.assert_allclose(model.force, history.params["force"][k])
    assert np.isfinite(history.objective[: k + 1]).all()
    assert history.params["force"][k + 1] > 0.2  # the offending step is recorded
    assert np.isnan(history.objective[k + 2 :]).all()


def test_nonfinite_step_stops_only_that_starting_point():
    def cliff(model):  # NaN for 0.2 < force < 0.25
        inside = (model.force > 0.2) & (model.force < 0.25)
        return jnp.where(inside, jnp.nan, (model.force - 0.5) ** 2)

    inits = {"force": jnp.array([0.05, 0.5])}  # the second starts at the minimum
    with pytest.warns(RuntimeWarning, match="starting point 0"):
        model, history = qs.optimize(
            cliff, MODEL, ["force"], steps=40, inits=inits, optimizer=optax.adam(0.5),
            progress=False,
        )
    assert list(history.stopped) == [True, False]
    assert history.num_steps[1] == 40 and float(model.force[0]) <= 0.2
    np.testing.assert_allclose(model.force[1], 0.5)


FORWARD = qs.SolverConfig(rtol=1e-10, atol=1e-10, adjoint=dfx.ForwardMode())
STATE0 = qs.GaussianState(jnp.zeros(2), jnp.array([[0.7, 0.1], [0.1, 0.5]]))


def late_variance(model):
    """Mean x variance over t ∈ (40, 50), NaN when the solve fails (e.g. diverges)."""
    cold = eqx.tree_at(lambda m: m.n_th, model, jnp.asarray(0.0))
    avg = qs.time_average(cold, x_variance, (40.0, 50.0), state0=STATE0, config=FORWARD,
                          throw=False)
    return jnp.where(avg.status == qs.Status.success, avg.value, jnp.nan)


def test_forward_mode_through_a_solve_and_no_reward_for_blow_ups():
    """Maximizing the late variance drives γ below 0, where the variance grows like e^{|γ|t}:
    the run must stop when the solve diverges instead of rewarding it."""
    # Same settings for both runs, so that the jitted step compiles once.
    kwargs = dict(bounds={"gamma": None}, maximize=True, gradient="forward",
                  optimizer=optax.sgd(10.0), progress=True)
    _, start = qs.optimize(late_variance, MODEL, ["gamma"], steps=0, **kwargs)
    # Closed form at n_th = 0, ω = 1: C(t) = ½I + e^{−γt} R(t)(C₀ − ½I)R(t)ᵀ, R(t) = e^{Jt}.
    c0 = np.asarray(STATE0.cov) - 0.5 * np.eye(2)

    def dvar_dgamma(t):
        rotation = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
        return -t * np.exp(-0.1 * t) * (rotation @ c0 @ rotation.T)[0, 0]

    exact = quad(dvar_dgamma, 40.0, 50.0, epsabs=1e-14)[0] / 10.0
    # gamma = s·z with s = 0.1: |d obj/dz| = 0.1 |d obj/d gamma|
    np.testing.assert_allclose(start.grad_norm[0], 0.1 * abs(exact), rtol=1e-7)

    with pytest.warns(RuntimeWarning, match="stopped at step"):
        model, history = qs.optimize(late_variance, MODEL, ["gamma"], steps=100, **kwargs)
    k = int(history.num_steps)
    assert bool(history.stopped) and history.params["gamma"][k + 1] < 0
    assert np.isfinite(late_variance(model)) and float(model.gamma) == history.params["gamma"][k]


class _IntLeafModel(eqx.Module):
    level: jax.Array
    rate: jax.Array


def _vector(model):
    return jnp.sum(model.E)


@pytest.mark.parametrize(
    "params, kwargs, match",
    [
        (["nope"], {}, "has no parameter 'nope'"),
        (["detuning"], {}, "not a floating-point array leaf"),  # None: derived from omega
        ([], {}, "at least one"),
        (["E"], {"bounds": {"E": (80.0, 10.0)}}, "lower < upper"),
        (["E"], {"bounds": {"E": (10.0, 10.0)}}, "lower < upper"),
        (["E"], {"bounds": {"mu": (0.0, 1.0)}}, "not in params"),
        (["E"], {"bounds": {"E": (50.0, 80.0)}}, "strictly inside"),
        (["omega"], {}, "must then all be equal"),
        (["n_th"], {}, "all are zero"),
        (["E"], {"bounds": {"E": (1.0, 2.0, 3.0)}}, r"\(lower, upper\) or None"),
        ({"E": "all"}, {}, "'shared' or 'each'"),
        (["E"], {"steps": -1}, "steps"),
        (["E"], {"gradient": "sideways"}, "gradient"),
        (["E"], {"inits": {"E": jnp.ones((2, 2))}}, r"shape \(B,\)"),
        (["E"], {"inits": {"mu": jnp.ones(2)}}, "not in params"),
    ],
)
def test_bad_input(params, kwargs, match):
    kwargs = {"steps": 1, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        qs.optimize(_vector, PAIR, params, **kwargs)


def test_integer_leaf_is_rejected():
    model = DampedOscillator(1.0, 0.1, jnp.asarray(2), 0.05)
    with pytest.raises(ValueError, match="'n_th' .* not a floating-point array leaf"):
        qs.optimize(quadratic, model, ["n_th"], steps=1, progress=False)


@pytest.mark.parametrize("progress", [False, True])
def test_nonfinite_start_is_an_error(progress):
    def bad(model):
        return jnp.log(model.force - 1.0)  # NaN at force = 0.05

    with pytest.raises(ValueError, match="not finite at the start.*force=0.05"):
        qs.optimize(bad, MODEL, ["force"], steps=3, progress=progress)


def test_nonscalar_objective_is_an_error():
    with pytest.raises(ValueError, match="scalar"):
        qs.optimize(lambda m: jnp.stack([m.force, m.gamma]), MODEL, ["force"], steps=1,
                    progress=False)


# ------------------------------------------------------------------------- design problems

BATH = qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.1, gamma=0.5, xi=0.1, n_th=(1.0, 0.0))
XI_BOUND = 0.6


def steady_information(model):
    """Rényi-2 mutual information of the steady state (NaN where there is none)."""
    return qs.mutual_information(qs.steady_state(model, throw=False).cov, kind="renyi2")


def test_design_correlated_bath_reaches_the_sweep_maximum():
    """Maximize I₂ over (ξ, g) at thermal bias n̄ = (1, 0), |ξ| < 0.6, from four starts."""
    inits = {"xi": jnp.array([0.1, -0.1, 0.3, -0.3]), "g": jnp.array([0.1, -0.1, -1.0, 1.0])}
    model, history = qs.optimize(
        steady_information, BATH, ["xi", "g"], steps=200, maximize=True,
        bounds={"xi": (-XI_BOUND, XI_BOUND)}, inits=inits, progress=False,
    )
    xis, gs = jnp.linspace(-XI_BOUND, XI_BOUND, 61), jnp.linspace(-3.0, 3.0, 121)
    grid = jax.vmap(jax.vmap(lambda xi, g: steady_information(
        eqx.tree_at(lambda m: (m.xi, m.g), BATH, (xi, g))), (None, 0)), (0, None))(xis, gs)
    sweep_max = float(jnp.max(grid))
    b = history.best()
    assert history.final_objective[b] > 0.99 * sweep_max
    assert np.all(np.abs(history.params["xi"]) < XI_BOUND)
    assert abs(float(model.xi[b])) > 0.59 and 0.45 < abs(float(model.g[b])) < 0.65
    assert np.sign(model.xi[b]) == np.sign(model.g[b])  # a₂ → −a₂ maps one optimum to the other
    assert np.all(np.diff(history.objective[:2], axis=-1) > 0)


PAIR_SHORT = qs.SolverConfig(adjoint=dfx.ForwardMode())


MECHANICS = jnp.array([2, 3, 6, 7])  # x, p of the mechanical modes 1 and 3


def mechanical_sync(t, state):
    b = state.mean[MECHANICS]
    return {"S_p": qs.phase_sync(state, 1, 3), "trC": jnp.trace(state.cov), "b": b, "b2": b**2}


def _phase_sync_average(model, window, config):
    """S̄_p of the mechanical modes, NaN unless the solve succeeded and the mean field stays on a
    limit cycle much larger than the fluctuations: 10·⟨tr C⟩ < a², a² the smaller mean-square
    oscillation amplitude of the two mechanical mean fields over the window (0 at a fixed point;
    chaos or an unstable orbit make tr C explode)."""
    avg = qs.time_average(model, mechanical_sync, window, config=config, throw=False)
    v = avg.value
    amplitude2 = jnp.sum((v["b2"] - v["b"] ** 2).reshape(2, 2), axis=-1)
    ok = (avg.status == qs.Status.success) & (10.0 * v["trC"] < jnp.min(amplitude2))
    return jnp.where(ok, v["S_p"], jnp.nan)


def short_phase_sync(model):
    return _phase_sync_average(model, (150.0, 300.0), PAIR_SHORT)


PAIR_BOUNDS = {"mu": (0.0, 0.1), "E": (10.0, 80.0)}


def test_design_optomechanical_pair_increases_phase_sync():
    """Reduced problem (t ≤ 300, 3 steps): S̄_p increases from the Fig. 2(a) point."""
    model, history = qs.optimize(
        short_phase_sync, PAIR, ["mu", "E"], steps=3, bounds=PAIR_BOUNDS, maximize=True,
        gradient="forward", optimizer=optax.adam(0.02), progress=False,
    )
    assert np.all(np.diff(history.objective) > 0)
    assert history.final_objective > 1.01 * history.objective[0]
    np.testing.assert_allclose(model.mu_matrix, model.mu_matrix.T)
    assert model.E[0] == model.E[1]


LONG = qs.SolverConfig(adjoint=dfx.ForwardMode(), max_steps=400_000)


def long_phase_sync(model):
    return _phase_sync_average(model, (1000.0, 2000.0), LONG)


def _pair_at(mu, E):
    return eqx.tree_at(lambda m: (m.mu, m.E), PAIR, (jnp.asarray(mu, float), jnp.full(2, E)))


@pytest.mark.slow
def test_design_optomechanical_pair_full_scale_matches_sweep():
    """t = 2000 (Fig. 2(a)): from the paper's point the optimizer climbs to the local maximum of
    a sweep around its result; a chaotic point is rejected (NaN), not rewarded."""
    model, history = qs.optimize(
        long_phase_sync, PAIR, ["mu", "E"], steps=20, bounds=PAIR_BOUNDS, maximize=True,
        gradient="forward", progress=False,
    )
    mu, E = float(model.mu), float(model.E[0])
    mus, Es = jnp.meshgrid(mu + jnp.array([-0.005, 0.0, 0.005]), E + jnp.array([-4.0, 0.0, 4.0]))
    grid = jax.jit(jax.vmap(lambda m, e: long_phase_sync(_pair_at(m, e))))(
        mus.ravel(), Es.ravel()
    )
    assert history.final_objective > 1.03 * history.objective[0]
    assert history.final_objective > np.nanmax(np.asarray(grid)) - 5e-4
    assert np.isnan(long_phase_sync(_pair_at(0.04, 64.0)))
