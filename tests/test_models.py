"""The model protocol: default drift, derived parameters, declared constraints, summaries.

References: ``jax.jacfwd`` of the mean field and the closed-form Jacobian of a Kerr oscillator
(drift); models built directly by their constructors (derived detuning); the declarations
themselves (constraints).
"""

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import DampedOscillator, Duffing, tree_allclose

import qsync_jax as qs

PAIR = dict(qs.MARI2013_FIG2)
RING = {**PAIR, "omega": 1.0}


# ------------------------------------------------------------------------------ protocol, drift


def test_default_drift_is_the_jacobian_of_the_mean_field():
    model = Duffing(omega=1.0, gamma=0.2, kerr=0.05, force=0.3)
    for x, p in ((0.0, 0.0), (1.3, -0.7), (-4.0, 2.5)):
        w = 1.0 + 0.05 * (x**2 + p**2)
        expected = np.array([[-0.1 + 0.1 * x * p, w + 0.1 * p * p],
                             [-w - 0.1 * x * x, -0.1 - 0.1 * x * p]])
        got = model.drift(0.0, jnp.array([x, p]))
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    # The dense vector field from mean_field/drift/diffusion integrates it like any model.
    traj = qs.evolve(model, jnp.array([5.0, 10.0]))
    assert traj.status == qs.Status.success and isinstance(traj.states, qs.GaussianState)
    assert np.all(np.asarray(qs.is_physical(traj.states.cov)))


def test_hand_written_drifts_equal_jacfwd():
    rng = np.random.default_rng(0)
    models = [
        qs.optomechanical_pair(**PAIR),
        qs.optomechanical_pair(**{**PAIR, "detuning": (0.9, -0.4)}),
        qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.1, gamma=0.5, xi=0.4, n_th=(0.3, 1.0)),
        DampedOscillator(1.0, 0.1, 2.0, 0.05),
    ]
    for model in models:
        mean = jnp.asarray(rng.normal(size=2 * model.n_modes) * 30)
        expected = jax.jacfwd(model.mean_field, argnums=1)(0.0, mean)
        assert tree_allclose(model.drift(0.0, mean), expected, rtol=1e-13, atol=1e-14)


def test_the_integrator_reads_only_the_protocol():
    import qsync_jax._integrate as integrate
    import qsync_jax._steady_state as steady
    import qsync_jax._sweep as sweep

    for module in (integrate, steady, sweep):
        source = open(module.__file__).read()
        for name in ("OptomechanicalNetwork", "OptomechanicalRing", "BlochRing", "select_path"):
            assert f"import {name}" not in source and f".{name} import" not in source
        assert "isinstance(model, Optomechanical" not in source


# ------------------------------------------------------------------------ derived parameters


@pytest.mark.parametrize("replace", ["dataclasses", "tree_at"])
def test_replacing_omega_keeps_the_derived_detuning(replace):
    def swap(model, omega):
        if replace == "dataclasses":
            return dataclasses.replace(model, omega=omega)
        return eqx.tree_at(lambda m: m.omega, model, omega)

    pair = qs.optomechanical_pair(**PAIR)
    assert pair.detuning is None
    omega = jnp.array([1.0, 1.2])
    swept = swap(pair, omega)
    direct = qs.optomechanical_pair(**{**PAIR, "omega": (1.0, 1.2)})
    assert tree_allclose(swept, direct, rtol=0.0, atol=0.0)
    np.testing.assert_array_equal(swept.delta, omega)
    mean = jnp.arange(8.0)
    assert tree_allclose(swept.drift(0.0, mean), direct.drift(0.0, mean), rtol=0.0, atol=0.0)
    # An explicit detuning stays what it was.
    fixed = qs.optomechanical_pair(**{**PAIR, "detuning": 1.0})
    np.testing.assert_array_equal(swap(fixed, omega).delta, [1.0, 1.0])
    # The ring alike.
    ring = swap(qs.optomechanical_ring(5, **RING), jnp.asarray(1.3))
    assert tree_allclose(ring, qs.optomechanical_ring(5, **{**RING, "omega": 1.3}), rtol=0, atol=0)
    assert float(ring.delta) == 1.3


def _detuning(model):
    return {"delta": model.delta}


def test_a_sweep_over_omega_keeps_the_derived_detuning():
    ds = qs.sweep(_detuning, qs.optomechanical_pair(**PAIR), {"omega[1]": [0.9, 1.2]},
                  progress=False)
    omega_0 = PAIR["omega"][0]
    np.testing.assert_array_equal(ds["delta"].values, [[omega_0, 0.9], [omega_0, 1.2]])


# ------------------------------------------------------------------------------- constraints


def test_parameters_are_declared_once_and_read_by_constructors():
    spec = qs.parameters(qs.OptomechanicalNetwork)
    assert set(spec) >= {"omega", "detuning", "E", "kappa", "gamma", "g", "n_th", "mu"}
    assert spec["gamma"].lower == 0.0 and spec["gamma"].upper == math.inf
    assert spec["mu"].lower == -math.inf  # a negative hopping is allowed
    assert spec["omega"].lower == 0.0 and spec["detuning"].lower == -math.inf
    assert qs.parameters(qs.optomechanical_ring(4, **RING)) == {
        k: v for k, v in qs.parameters(qs.OptomechanicalRing).items()}
    assert all(p.units and p.doc for p in spec.values())
    bath = qs.parameters(qs.CorrelatedBathOscillators)
    assert (bath["xi"].lower, bath["xi"].upper) == (-1.0, 1.0)
    assert bath["gamma"].lower == spec["gamma"].lower  # rates: one rule, ≥ 0, in every model
    qs.optomechanical_pair(**{**PAIR, "mu": -0.02})  # gauge choice: allowed
    qs.CorrelatedBathOscillators(omega=(-1.0, 1.0), g=0.1, gamma=0.0, xi=0.5)  # γ = 0: allowed
    for name, value, match in (("omega", (-1.0, 1.0), "`omega` must be non-negative"),
                               ("gamma", -1e-3, "`gamma` must be non-negative"),
                               ("n_th", np.nan, "`n_th` must be finite"),
                               ("kappa", 1j, "`kappa` must be real"),
                               ("detuning", (np.inf, 0.0), "`detuning` must be finite")):
        with pytest.raises(ValueError, match=match):
            qs.optomechanical_pair(**{**PAIR, name: value})
    with pytest.raises(ValueError, match="`xi` must lie in"):
        qs.CorrelatedBathOscillators(omega=1.0, g=0.1, gamma=0.1, xi=1.5)
    with pytest.raises(ValueError, match="`model`"):
        qs.parameters(3.0)


def test_optimize_reads_the_declared_bounds():
    def push_omega_negative(model):
        return jnp.sum(model.omega)

    # ω of the network is declared ≥ 0: softplus keeps it positive while it is pushed down.
    pair = qs.optomechanical_pair(**{**PAIR, "omega": 1.0})
    out, history = qs.optimize(push_omega_negative, pair, ["omega"], steps=30, progress=False,
                               optimizer=optax.adam(0.5))
    assert np.all(np.asarray(out.omega) > 0) and history.status == qs.Status.success
    # ω of the bath model is declared unbounded (a rotating frame): it may cross zero.
    bath = qs.CorrelatedBathOscillators(omega=0.1, g=0.1, gamma=0.1, xi=0.0)
    out, _ = qs.optimize(push_omega_negative, bath, ["omega"], steps=30, progress=False,
                         optimizer=optax.adam(0.5))
    assert np.all(np.asarray(out.omega) < 0)


# ---------------------------------------------------------------------------------- summaries


def test_models_states_and_statuses_print_readable_summaries():
    pair = qs.optomechanical_pair(**PAIR)
    text = repr(pair)
    assert text.startswith("OptomechanicalNetwork(") and "omega=[1, 1.005]" in text
    assert "detuning=None" in text and "mu=0.02" in text and "kappa=[0.15, 0.15]" in text
    assert "<pre>" in pair._repr_html_()
    ring = qs.optomechanical_ring(500, **RING)
    assert repr(ring) == ("OptomechanicalRing(omega=1, detuning=None, E=48, kappa=0.15, "
                          "gamma=0.005, g=0.005, n_th=0, mu=0.02, n_sites=500)")
    state = ring.initial_state()
    assert "RingState(site_mean=[0, 0, 0, 0], bloch_real=<float64[10, 251]" in repr(state)
    assert "GaussianState(mean=[0, 0]" in repr(qs.vacuum(1))
    assert repr(qs.Status.max_steps_reached).endswith("Status<max_steps_reached>")
    batch = jax.vmap(lambda m: qs.solve_steady_state(m, throw=False).status)(
        jax.tree_util.tree_map(lambda *x: jnp.stack(x), *[
            qs.CorrelatedBathOscillators(omega=1.0, g=0.0, gamma=0.5, xi=xi) for xi in
            (0.0, 1.0, 0.5)]))
    assert repr(batch).endswith("Status<no_steady_state: 1, success: 2>")
    _, history = qs.optimize(lambda m: jnp.sum(m.E), pair, ["E"], steps=1, progress=False)
    assert "OptimizeHistory(status='success', num_steps=1" in repr(history)
    seen = []
    jax.jit(lambda m: seen.append(repr(m)) or m.mu)(pair)  # a traced model prints too
    assert "omega=<traced float64[2]>" in seen[0]
