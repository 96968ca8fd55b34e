"""A model from its mean field and diffusion alone (drift = jacfwd); the converters."""

import jax.numpy as jnp
import numpy as np
import pytest
import thewalrus.quantum as twq
from jaxtyping import Array, Float

import qsync_jax as qs


class MyOptomechanicalPair(qs.AbstractGaussianModel):
    """The optomechanical pair of Mari et al., eq. (9), written from scratch (docs/own-model.md)."""

    omega: Float[Array, "2"]
    kappa: Float[Array, ""]
    gamma: Float[Array, ""]
    g: Float[Array, ""]
    E: Float[Array, ""]
    mu: Float[Array, ""]
    n_th: Float[Array, ""]

    @property
    def n_modes(self):
        return 4

    def mean_field(self, t, u):
        xa, pa, xb, pb = u.reshape(2, 4).T  # each (2,): site 1, site 2
        detuning = self.omega + jnp.sqrt(2.0) * self.g * xb
        return jnp.stack([
            -self.kappa * xa - detuning * pa + jnp.sqrt(2.0) * self.E,
            -self.kappa * pa + detuning * xa,
            -self.gamma * xb + self.omega * pb - self.mu * pb[::-1],
            -self.gamma * pb - self.omega * xb + self.mu * xb[::-1]
            + self.g * (xa**2 + pa**2) / jnp.sqrt(2.0),
        ], axis=-1).reshape(-1)

    def diffusion(self, t, u):
        mech = self.gamma * (2 * self.n_th + 1)
        return jnp.diag(jnp.tile(jnp.stack([self.kappa, self.kappa, mech, mech]), 2))

    def bath_occupations(self):
        return jnp.stack([0.0, self.n_th, 0.0, self.n_th])


def test_mean_field_model_matches_builtin():
    params = dict(kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02, n_th=0.1)
    mine = MyOptomechanicalPair(omega=jnp.array([1.0, 1.005]),
                                **{k: jnp.asarray(v) for k, v in params.items()})
    builtin = qs.optomechanical_pair(omega=(1.0, 1.005), **params)
    u = jnp.asarray(np.random.default_rng(0).normal(size=8) * 30)
    for method in ("mean_field", "drift", "diffusion"):
        np.testing.assert_allclose(getattr(mine, method)(0.0, u), getattr(builtin, method)(0.0, u),
                                   rtol=1e-12, atol=1e-12)
    ts = jnp.linspace(0.0, 50.0, 6)
    a, b = qs.evolve(mine, ts), qs.evolve(builtin, ts)
    np.testing.assert_allclose(a.states.mean, b.states.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.states.cov, b.states.cov, rtol=1e-12, atol=1e-12)


def test_occupations_and_thewalrus_round_trip():
    state = qs.steady_state(qs.QuadraticLindbladModel(
        np.array([[1.0, 0.3 - 0.2j], [0.3 + 0.2j, 1.2]]), pairing=np.diag([0.1, 0.05j]),
        jumps=np.array([[0.5, 0.2j, 0.1, 0.0], [0.0, 0.7, 0.0, 0.2]]), drive=[0.3, -0.1j]))
    means, cov = qs.to_thewalrus(state)
    for j in range(2):
        assert float(qs.occupations(state)[j]) == pytest.approx(
            twq.photon_number_mean(np.asarray(means), np.asarray(cov), j, hbar=2), abs=1e-13)
    assert twq.is_valid_cov(np.asarray(cov), hbar=2)
    back = qs.from_thewalrus(means, cov)
    np.testing.assert_allclose(back.cov, state.cov, atol=1e-15)
    np.testing.assert_allclose(back.mean, state.mean, atol=1e-15)
    np.testing.assert_allclose(qs.occupations(qs.thermal([0.3, 2.0])), [0.3, 2.0], atol=1e-15)
    np.testing.assert_allclose(qs.occupations(qs.coherent([1 + 1j])), [2.0], atol=1e-14)
    np.testing.assert_allclose(qs.to_thewalrus(qs.vacuum(2))[1], np.eye(4), atol=0)
    with pytest.raises(ValueError, match="hbar"):
        qs.to_thewalrus(state, hbar=-1.0)
    with pytest.raises(ValueError, match="means"):
        qs.from_thewalrus(np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="cov"):
        qs.from_thewalrus(np.zeros(4), np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="state"):
        qs.occupations(np.eye(4))
