"""Shared test utilities: tree comparison, central finite differences, small test models and
compile counters. Test files import from here, never from each other."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import qsync_jax as qs
from qsync_jax._models._base import parameter


def tree_allclose(x, y, *, rtol=1e-10, atol=1e-12):
    """True when two pytrees have the same structure and allclose leaves."""
    xs, tx = jax.tree_util.tree_flatten(x)
    ys, ty = jax.tree_util.tree_flatten(y)
    if tx != ty:
        return False
    return all(
        np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol) for a, b in zip(xs, ys)
    )


def finite_difference_grad(f, x, *, h=1e-6):
    """Central finite-difference gradient of a scalar function of an array `x`."""
    x = jnp.asarray(x, dtype=jnp.float64)
    flat = x.ravel()
    grads = []
    for k in range(flat.size):
        e = jnp.zeros_like(flat).at[k].set(h).reshape(x.shape)
        grads.append((f(x + e) - f(x - e)) / (2 * h))
    return jnp.stack(grads).reshape(x.shape)


class DampedOscillator(qs.AbstractLinearModel):
    """One mode, frequency omega, energy damping gamma into a bath with n_th quanta, drive b."""

    omega: jax.Array = parameter(units="1/time", doc="frequency", converter=jnp.asarray)
    gamma: jax.Array = parameter(lower=0.0, units="1/time", doc="energy damping rate",
                                 converter=jnp.asarray)
    n_th: jax.Array = parameter(lower=0.0, units="quanta", doc="bath occupation",
                                converter=jnp.asarray)
    force: jax.Array = parameter(units="1/time", doc="force on p", converter=jnp.asarray,
                                 default=0.0)

    @property
    def n_modes(self):
        return 1

    def drift_matrix(self):
        return jnp.stack(
            [
                jnp.stack([-self.gamma / 2, self.omega]),
                jnp.stack([-self.omega, -self.gamma / 2]),
            ]
        )

    def drive_vector(self):
        return jnp.stack([jnp.zeros_like(self.force), self.force])

    def diffusion_matrix(self):
        return self.gamma * (self.n_th + 0.5) * jnp.eye(2)

    def bath_occupations(self):
        return jnp.atleast_1d(self.n_th)


def x_variance(t, state):
    return state.cov[0, 0]


PARAMETRIC_TRACES = []
"""One entry per trace of ``ParametricOscillator.drift_matrix`` (compile counter)."""


class ParametricOscillator(qs.AbstractLinearModel):
    """One mode, energy damping κ into vacuum, degenerate parametric gain χ (rotating frame),
    constant force f on x: ẋ = (χ − κ/2)x + f, ṗ = −(χ + κ/2)p, D = (κ/2)·I.

    Below threshold (χ < κ/2) the steady state has mean (f/(κ/2 − χ), 0) and the squeezed
    covariance diag(κ/4/(κ/2 − χ), κ/4/(κ/2 + χ)).
    """

    kappa: jax.Array = eqx.field(converter=jnp.asarray)
    chi: jax.Array = eqx.field(converter=jnp.asarray)
    force: jax.Array = eqx.field(converter=jnp.asarray)

    @property
    def n_modes(self):
        return 1

    def drift_matrix(self):
        PARAMETRIC_TRACES.append(None)
        return jnp.diag(jnp.stack([self.chi - self.kappa / 2, -self.chi - self.kappa / 2]))

    def drive_vector(self):
        return jnp.stack([self.force, jnp.zeros_like(self.force)])

    def diffusion_matrix(self):
        return self.kappa / 2 * jnp.eye(2, dtype=self.kappa.dtype)

    def bath_occupations(self):
        return jnp.zeros(1, dtype=self.kappa.dtype)


class Duffing(qs.AbstractGaussianModel):
    """A driven, damped Kerr (Duffing) mode with no hand-written drift: the default
    ``jax.jacfwd`` drift. ẋ = −γx/2 + (ω + k(x² + p²))p, ṗ = −γp/2 − (ω + k(x² + p²))x + F."""

    omega: jax.Array = parameter(units="1/time", doc="frequency", converter=jnp.asarray)
    gamma: jax.Array = parameter(lower=0.0, units="1/time", doc="damping rate",
                                 converter=jnp.asarray)
    kerr: jax.Array = parameter(units="1/time", doc="Kerr shift", converter=jnp.asarray)
    force: jax.Array = parameter(units="1/time", doc="drive", converter=jnp.asarray)

    @property
    def n_modes(self):
        return 1

    def mean_field(self, t, mean):
        x, p = mean[0], mean[1]
        w = self.omega + self.kerr * (x**2 + p**2)
        return jnp.stack([-self.gamma / 2 * x + w * p, -self.gamma / 2 * p - w * x + self.force])

    def diffusion(self, t, mean):
        return self.gamma / 2 * jnp.eye(2, dtype=mean.dtype)

    def bath_occupations(self):
        return jnp.zeros(1, dtype=self.gamma.dtype)
