r"""Abstract Gaussian models: a mean-field vector field, its linearization and a diffusion.

Every model describes ``n_modes`` bosonic modes in real quadratures
(convention of :mod:`qsync_jax._gaussian`: ħ = 1, xpxp ordering, vacuum covariance ½·I).
The classical (mean-field) part evolves as

$$\frac{d\langle u\rangle}{dt} = f(t, \langle u\rangle),$$

and the fluctuations around it, linearized, as

$$\frac{dC}{dt} = A C + C A^\top + D, \qquad A = \frac{\partial f}{\partial u}\Big|_{\langle u\rangle}.$$

``AbstractModel`` asks a final model for ``mean_field`` (f) and ``diffusion`` (D) and for the
thermal occupation of each mode's bath (the default initial state); ``drift`` (A) defaults to
``jax.jacfwd`` of the mean field.
``AbstractLinearModel`` is the special case f(t, u) = A u + b with constant A, b and D, for which
a steady state may exist (:func:`qsync_jax.steady_state`).
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._gaussian import GaussianState


class AbstractModel(eqx.Module):
    """A Gaussian open-system model: mean field f, drift A = ∂f/∂u, diffusion D.

    Final subclasses implement the abstract methods; ``drift`` defaults to the Jacobian of
    ``mean_field`` (``jax.jacfwd``). A hand-written ``drift`` must equal
    ``jax.jacfwd(mean_field, argnums=1)`` (tests check this for every model).
    """

    @property
    @abc.abstractmethod
    def n_modes(self) -> int:
        """Number of bosonic modes n (the state has 2n quadratures)."""

    @abc.abstractmethod
    def mean_field(self, t: Float[Array, ""], mean: Float[Array, " 2n"]) -> Float[Array, " 2n"]:
        """Classical vector field d⟨u⟩/dt in real quadratures (xpxp)."""

    def drift(self, t: Float[Array, ""], mean: Float[Array, " 2n"]) -> Float[Array, "2n 2n"]:
        """Drift matrix A of the fluctuations: the Jacobian of ``mean_field`` at ``mean``.

        Default: ``jax.jacfwd`` of ``mean_field`` (2n forward tangents), so a model is defined by
        its mean field and diffusion alone; a model may supply a hand-written Jacobian instead.
        """
        return jax.jacfwd(self.mean_field, argnums=1)(t, mean)

    @abc.abstractmethod
    def diffusion(self, t: Float[Array, ""], mean: Float[Array, " 2n"]) -> Float[Array, "2n 2n"]:
        """Diffusion matrix D (symmetric, positive semidefinite)."""

    @abc.abstractmethod
    def bath_occupations(self) -> Float[Array, " n"]:
        """Thermal occupation n̄ of the bath each mode is damped into (0 for vacuum baths)."""

    def initial_state(self) -> GaussianState:
        """Default initial state: zero mean, each mode thermal at its bath's occupation."""
        n_th = self.bath_occupations()
        var = jnp.repeat(n_th + 0.5, 2)
        return GaussianState(mean=jnp.zeros_like(var), cov=jnp.diag(var))


class AbstractLinearModel(AbstractModel):
    """A linear Gaussian model: f(t, u) = A u + b with constant A, b and D.

    Final subclasses implement ``drift_matrix``, ``drive_vector`` (b) and ``diffusion_matrix``;
    the time- and state-dependent interface of :class:`AbstractModel` follows from them.
    """

    @abc.abstractmethod
    def drift_matrix(self) -> Float[Array, "2n 2n"]:
        """Constant drift matrix A."""

    @abc.abstractmethod
    def drive_vector(self) -> Float[Array, " 2n"]:
        """Constant inhomogeneous term b of the mean field."""

    @abc.abstractmethod
    def diffusion_matrix(self) -> Float[Array, "2n 2n"]:
        """Constant diffusion matrix D."""

    def mean_field(self, t, mean):
        return self.drift_matrix() @ mean + self.drive_vector()

    def drift(self, t, mean):
        return self.drift_matrix()

    def diffusion(self, t, mean):
        return self.diffusion_matrix()
