r"""The model protocol: what the integrator, steady state, sweeps and design read from a model.

A **model** (:class:`AbstractModel`) knows

- its default initial state (``initial_state()``), of the model's own *state type*;
- its vector field over that state type (``vector_field(t, state)``, a pytree of the same
  structure: what :func:`qsync_jax.evolve` integrates);
- how to check a state (``check_state(state)``: shapes, finiteness, raising ``ValueError``
  naming the argument, ``state0`` by default).

Nothing else: the integrator knows no concrete model and selects no path. The state type of a
Gaussian model is :class:`qsync_jax.GaussianState`; a structured model may have its own (the
Bloch-decomposed ring, :class:`qsync_jax.RingState`). Every state type offers ``n_modes`` and
``reduce(modes)`` (the ``GaussianState`` of a few modes), which is all the measures read.

**Gaussian models** (:class:`AbstractGaussianModel`) describe ``n_modes`` bosonic modes in real
quadratures (convention of :mod:`qsync_jax._gaussian`: ħ = 1, xpxp ordering, vacuum covariance
½·I). The classical (mean-field) part evolves as

$$\frac{d\langle u\rangle}{dt} = f(t, \langle u\rangle),$$

and the fluctuations around it, linearized, as

$$\frac{dC}{dt} = A C + C A^\top + D,
  \qquad A = \frac{\partial f}{\partial u}\Big|_{\langle u\rangle}.$$

A final Gaussian model gives ``mean_field`` (f), ``diffusion`` (D) and the thermal occupation of
each mode's bath (the default initial state); ``drift`` (A) defaults to ``jax.jacfwd`` of the
mean field, and a hand-written drift is an optimization that must equal it (tests check this for
every model). :class:`AbstractLinearModel` is the special case f(t, u) = A u + b with constant A,
b and D, for which a steady state may exist (:func:`qsync_jax.steady_state`).

**Parameters.** A model's physical parameters are array fields declared with :func:`parameter`,
which records their bounds, units and meaning once; :func:`parameters` reads them (for the
constructors' checks, :func:`qsync_jax.optimize`'s default reparametrizations, sweeps, the command
line and the docs) and :func:`check_parameters` applies them.
"""

import abc
import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from .._gaussian import GaussianState, _as_real
from .._matmul import matmul
from .._summary import Summary

# ------------------------------------------------------------------------------------ parameters


@dataclasses.dataclass(frozen=True)
class Parameter:
    """Declared constraint of one model parameter (read with :func:`qsync_jax.parameters`).

    - ``name``: the field (and constructor keyword).
    - ``lower``, ``upper``: closed bounds, ``lower ≤ value ≤ upper`` (±inf when unbounded).
    - ``units``: the physical dimension (models are unit-free: pick a unit of time, e.g. the
      inverse of a reference frequency, and every rate or frequency is in its inverse).
    - ``doc``: one line of meaning, with the reason for the bounds where they are a choice.
    """

    name: str
    lower: float
    upper: float
    units: str
    doc: str

    def violation(self, values: np.ndarray) -> str | None:
        """What is wrong with concrete ``values`` (non-finite or out of bounds), or None."""
        if not np.all(np.isfinite(values)):
            return "must be finite"
        if np.any(values < self.lower) or np.any(values > self.upper):
            if math.isinf(self.upper):
                return "must be non-negative" if self.lower == 0 else f"must be ≥ {self.lower:g}"
            if math.isinf(self.lower):
                return f"must be ≤ {self.upper:g}"
            return f"must lie in [{self.lower:g}, {self.upper:g}]"
        return None


def parameter(
    *, units: str, doc: str, lower: float = -math.inf, upper: float = math.inf, **field_kwargs
):
    """Declare a model field as a physical parameter (an array leaf) with bounds, units, meaning.

    Use as ``omega: Float[Array, " N"] = parameter(lower=0.0, units="1/time", doc="...")``;
    other keywords (``converter``, ``default``) go to ``eqx.field``.
    """
    spec = dict(lower=float(lower), upper=float(upper), units=units, doc=doc)
    return eqx.field(metadata={"parameter": spec}, **field_kwargs)


def parameters(model) -> dict[str, Parameter]:
    """The declared parameters of a model (instance or class): name → :class:`Parameter`.

    Example: ``qs.parameters(qs.OptomechanicalNetwork)["gamma"]`` gives its bounds (rates are
    ≥ 0), units and meaning. Fields without a declaration (sizes, choices) are not listed.
    """
    cls = model if isinstance(model, type) else type(model)
    if not (isinstance(cls, type) and issubclass(cls, eqx.Module)):
        raise ValueError(f"`model` must be a model or a model class; got {model!r}.")
    out = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("parameter")
        if spec is not None:
            out[f.name] = Parameter(name=f.name, **spec)
    return out


def _is_concrete(x) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def check_parameter(cls, name: str, value) -> Array:
    """``value`` of parameter ``name`` of ``cls`` as a real float array, checked (when concrete)
    against its declared bounds; ``ValueError`` naming the argument otherwise."""
    arr = _as_real(value, f"`{name}`").astype(float)
    if _is_concrete(arr):
        values = np.asarray(arr)
        problem = parameters(cls)[name].violation(values)
        if problem:
            raise ValueError(f"`{name}` {problem}; got {values} (shape {arr.shape}).")
    return arr


# ----------------------------------------------------------------------------------------- models


class AbstractModel(Summary):
    """A model: initial state, vector field over its state type, state check (module docstring).

    Final models implement the three abstract methods; :func:`qsync_jax.evolve`,
    :func:`qsync_jax.time_average` and :func:`qsync_jax.sweep` read nothing else.
    """

    @abc.abstractmethod
    def initial_state(self) -> PyTree:
        """Default initial state, of the model's state type."""

    @abc.abstractmethod
    def vector_field(self, t: Float[Array, ""], state: PyTree) -> PyTree:
        """d state/dt: a pytree of the state's structure."""

    @abc.abstractmethod
    def check_state(self, state: PyTree, name: str = "state0") -> None:
        """``ValueError`` naming ``name`` unless ``state`` is a finite state of this model's type
        and shapes (values checked only when concrete)."""


class AbstractGaussianModel(AbstractModel):
    """A Gaussian open-system model: mean field f, drift A = ∂f/∂u, diffusion D.

    Final subclasses implement ``n_modes``, ``mean_field``, ``diffusion`` and
    ``bath_occupations``; ``drift`` defaults to ``jax.jacfwd(mean_field, argnums=1)`` (a
    hand-written drift must equal it). The state is a :class:`qsync_jax.GaussianState` and the
    vector field is the one of the module docstring.
    """

    @property
    @abc.abstractmethod
    def n_modes(self) -> int:
        """Number of bosonic modes n (the state has 2n quadratures)."""

    @abc.abstractmethod
    def mean_field(self, t: Float[Array, ""], mean: Float[Array, " 2n"]) -> Float[Array, " 2n"]:
        """Classical vector field d⟨u⟩/dt in real quadratures (xpxp)."""

    @abc.abstractmethod
    def diffusion(self, t: Float[Array, ""], mean: Float[Array, " 2n"]) -> Float[Array, "2n 2n"]:
        """Diffusion matrix D (symmetric, positive semidefinite)."""

    @abc.abstractmethod
    def bath_occupations(self) -> Float[Array, " n"]:
        """Thermal occupation n̄ of the bath each mode is damped into (0 for vacuum baths)."""

    def drift(self, t: Float[Array, ""], mean: Float[Array, " 2n"]) -> Float[Array, "2n 2n"]:
        """Drift matrix A of the fluctuations: the Jacobian of ``mean_field`` at ``mean``."""
        return jax.jacfwd(self.mean_field, argnums=1)(t, mean)

    def initial_state(self) -> GaussianState:
        """Default initial state: zero mean, each mode thermal at its bath's occupation."""
        n_th = self.bath_occupations()
        var = jnp.repeat(n_th + 0.5, 2)
        return GaussianState(mean=jnp.zeros_like(var), cov=jnp.diag(var))

    def vector_field(self, t, state: GaussianState) -> GaussianState:
        """d⟨u⟩/dt = f(t, ⟨u⟩), dC/dt = A C + C Aᵀ + D (module docstring)."""
        A = self.drift(t, state.mean)
        AC = matmul(A, state.cov)
        return GaussianState(
            mean=self.mean_field(t, state.mean), cov=AC + AC.T + self.diffusion(t, state.mean)
        )

    def check_state(self, state, name: str = "state0") -> None:
        """``ValueError`` unless ``state`` is a ``GaussianState`` with mean (2n,), cov (2n, 2n)
        and (when concrete) finite entries."""
        dim = 2 * self.n_modes
        if not isinstance(state, GaussianState):
            raise ValueError(
                f"{name} must be a GaussianState of {self.n_modes} modes; got "
                f"{type(state).__name__}."
            )
        if jnp.shape(state.mean) != (dim,) or jnp.shape(state.cov) != (dim, dim):
            raise ValueError(
                f"{name} must have mean of shape ({dim},) and cov of shape ({dim}, {dim}) for a "
                f"model of {self.n_modes} modes; got mean {jnp.shape(state.mean)} and cov "
                f"{jnp.shape(state.cov)}."
            )
        if _is_concrete(state) and not (
            np.all(np.isfinite(state.mean)) and np.all(np.isfinite(state.cov))
        ):
            raise ValueError(f"{name} has non-finite entries.")


class AbstractLinearModel(AbstractGaussianModel):
    """A linear Gaussian model: f(t, u) = A u + b with constant A, b and D.

    Final subclasses implement ``drift_matrix``, ``drive_vector`` (b) and ``diffusion_matrix``
    (and ``n_modes``, ``bath_occupations``); the time- and state-dependent interface of
    :class:`AbstractGaussianModel` follows from them.
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
