r"""Steady states of linear Gaussian models: a differentiable Lyapunov solve.

A linear model (:class:`qsync_jax.AbstractLinearModel`: d⟨u⟩/dt = A⟨u⟩ + b, dC/dt = AC + CAᵀ + D,
conventions of :mod:`qsync_jax._gaussian`) relaxes to a unique steady state from every initial
state iff A is Hurwitz (every eigenvalue has Re λ < 0). The steady state is then

$$\bar u = -A^{-1} b,\qquad A C + C A^\top + D = 0.$$

The Lyapunov equation is solved by :func:`qsync_jax.solve_lyapunov` (:mod:`qsync_jax._lyapunov`):
in Kronecker form by one LU solve for small models, by Bartels–Stewart (Schur) for larger ones;
both exact up to rounding, differentiable and batched by ``vmap``.

**No unique steady state.** Where the spectral abscissa α = max Re λ(A) satisfies
α ≥ −10⁻¹⁰·max|λ(A)| (an undamped mode, such as the dark mode of
:class:`qsync_jax.CorrelatedBathOscillators` at |ξ| = 1 on resonance, or an unstable one), the
solve reports :attr:`qsync_jax.Status.no_steady_state` instead of returning the meaningless
solution of the Lyapunov equation: with ``throw=True`` an error is raised (also under ``jit``);
with ``throw=False`` the state is NaN and the status says why. Close to the threshold the steady
state is ill-conditioned: its relative error grows like 10⁻¹⁶·max|λ|/|α|.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ._devices import in_unsplit_batches
from ._gaussian import GaussianState
from ._lyapunov import STABILITY_RTOL, solve_lyapunov
from ._models._base import AbstractLinearModel
from ._results import SteadyStateSolution
from ._status import Status


def _linear_algebra(A, b, D):
    lam = jnp.linalg.eigvals(jax.lax.stop_gradient(A))
    abscissa = jnp.max(lam.real)
    ok = abscissa < -STABILITY_RTOL * jnp.max(jnp.abs(lam))
    # Solve with a harmless drift where there is no steady state (no NaN in any gradient).
    A = jnp.where(ok, A, -jnp.eye(A.shape[-1], dtype=A.dtype))
    return abscissa, ok, solve_lyapunov(A, D), jnp.linalg.solve(A, -b)


@eqx.filter_jit
def _solve(model: AbstractLinearModel, throw: bool) -> SteadyStateSolution:
    A, b, D = model.drift_matrix(), model.drive_vector(), model.diffusion_matrix()
    m = A.shape[-1]  # jaxlib's work estimate: LU of the m² × m² Kronecker system, eigenvalues
    abscissa, ok, C, mean = in_unsplit_batches(_linear_algebra, max(m**6, 10 * m**3))(A, b, D)
    status = Status.where(ok, Status.success, Status.no_steady_state)
    nan = jnp.asarray(jnp.nan, dtype=C.dtype)
    state = GaussianState(
        mean=jnp.where(ok, mean, nan), cov=jnp.where(ok, 0.5 * (C + C.T), nan)
    )
    if throw:
        state = status.error_if(state, status != Status.success)
    return SteadyStateSolution(state=state, status=status, spectral_abscissa=abscissa)


def _check_model(model) -> None:
    if not isinstance(model, AbstractLinearModel):
        raise ValueError(
            f"`model` must be a linear model (an AbstractLinearModel, e.g. "
            f"CorrelatedBathOscillators); got {type(model).__name__}."
        )


def solve_steady_state(
    model: AbstractLinearModel, *, throw: bool = True
) -> SteadyStateSolution:
    """Steady state of a linear model, with its status and spectral abscissa.

    **Main argument:** ``model``, any :class:`qsync_jax.AbstractLinearModel`.

    **Other argument:** ``throw``: raise where there is no unique steady state (default); with
    ``throw=False`` such points get a NaN state and ``Status.no_steady_state`` (use this under
    ``vmap`` over parameters, where one failing point would otherwise abort the batch).

    Works under ``jax.jit``, ``jax.vmap`` (over a batch of models) and ``jax.grad``.
    """
    _check_model(model)
    return _solve(model, throw)


def steady_state(model: AbstractLinearModel, *, throw: bool = True) -> GaussianState:
    """The steady ``GaussianState`` of a linear model (:func:`solve_steady_state`'s ``state``).

    Mean −A⁻¹b and covariance C with A C + C Aᵀ + D = 0 (module docstring). Raises where the
    drift has an eigenvalue with Re λ ≥ 0 (no unique steady state); with ``throw=False`` returns
    a NaN state there instead.
    """
    return solve_steady_state(model, throw=throw).state
