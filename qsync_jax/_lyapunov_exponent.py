r"""Largest Lyapunov exponent of a model's mean field (Benettin's tangent-vector method).

A tangent vector v is carried along the classical trajectory by the variational equation
v̇ = A(u) v, A = ∂f/∂u, and renormalized every τ (``renormalize``):

$$\lambda_{\max} = \frac{1}{t_1 - t_s}\sum_{k} \ln\frac{\lVert v(t_s + k\tau)\rVert}
                    {\lVert v(t_s + (k-1)\tau)\rVert}, \qquad \lVert v(t_s)\rVert = 1.$$

λ_max > 0: chaos (no linearization about the trajectory stays small); λ_max = 0: a limit cycle
or torus (the phase direction); λ_max < 0: a stable fixed point. The covariance of the
fluctuations grows like e^{2λ_max t} on a chaotic trajectory, so its growth rate is twice the
exponent at best (and transient growth is not an exponent at all).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PyTree

from ._integrate import SolverConfig, _check_state0, _save_state, _solve
from ._models._base import AbstractModel
from ._results import AbstractResult
from ._status import Status, from_diffrax, mark_nonfinite


class LyapunovExponent(AbstractResult):
    """Result of :func:`lyapunov_exponent`.

    - ``value``: the largest Lyapunov exponent over [t_start, t_end] (units of 1/time).
    - ``running``: (K,) the estimate over [t_start, t_start + kτ], k = 1 … K (convergence).
    - ``times``: (K,) the renormalization times t_start + kτ.
    - ``status``, ``num_steps``: as for every result.
    """

    value: Float[Array, ""]
    running: Float[Array, " K"]
    times: Float[Array, " K"]
    status: Status
    num_steps: Int[Array, ""]

    def outputs(self) -> PyTree:
        return {"value": self.value, "running": self.running}

    def save_times(self) -> None:
        return None


def _tangent_field(t, y, model):
    x, v = y
    return model.mean_field(t, x), model.drift(t, x) @ v


@eqx.filter_jit
def _lyapunov(model, x0, v0, t0, t_start, tau, n_intervals, config):
    transient = _solve(model, x0, t0, t_start, config, _save_state,
                       vector_field=lambda t, x, m: m.mean_field(t, x))
    x_s = transient.ys[-1]

    def interval(carry, k):
        x, v, status, steps = carry
        t = t_start + k * tau
        sol = _solve(model, (x, v), t, t + tau, config, _save_state,
                     vector_field=_tangent_field)
        x, v = jax.tree_util.tree_map(lambda a: a[-1], sol.ys)
        norm = jnp.linalg.norm(v)
        status = Status.where(status == Status.success, from_diffrax(sol.result), status)
        return (x, v / norm, status, steps + sol.stats["num_steps"]), jnp.log(norm)

    init = (x_s, v0 / jnp.linalg.norm(v0), from_diffrax(transient.result),
            transient.stats["num_steps"])
    ks = jnp.arange(n_intervals, dtype=tau.dtype)
    (_, _, status, steps), logs = jax.lax.scan(interval, init, ks)
    times = t_start + (ks + 1) * tau
    running = jnp.cumsum(logs) / (times - t_start)
    status = mark_nonfinite(status, running)
    return LyapunovExponent(value=running[-1], running=running, times=times, status=status,
                            num_steps=steps)


def lyapunov_exponent(
    model: AbstractModel,
    *,
    t_start: float = 100.0,
    t_end: float = 400.0,
    renormalize: float = 1.0,
    mean0: Float[Array, " 2n"] | None = None,
    tangent0: Float[Array, " 2n"] | None = None,
    t0: float = 0.0,
    config: SolverConfig = SolverConfig(),
) -> LyapunovExponent:
    r"""Largest Lyapunov exponent of the mean field over [``t_start``, ``t_end``] (Benettin).

    **Main argument:** ``model``, any :class:`qsync_jax.AbstractModel` (its ``mean_field`` and
    ``drift`` are used; the covariance plays no role).

    **Other arguments:** ``t_start`` (end of the discarded transient, ≥ ``t0``), ``t_end``,
    ``renormalize`` (interval τ between renormalizations of the tangent vector; (t_end −
    t_start)/τ must be a whole number), ``mean0`` (initial mean, default the model's initial
    state's), ``tangent0`` (initial tangent vector, default all ones), ``t0``, ``config``.
    Times are concrete numbers (they set the number of intervals).
    """
    if not isinstance(model, AbstractModel):
        raise TypeError(f"`model` must be a qsync_jax model; got {type(model).__name__}.")
    times = {"t0": t0, "t_start": t_start, "t_end": t_end, "renormalize": renormalize}
    for name, value in times.items():
        if np.ndim(value) != 0 or not np.isfinite(value):
            raise ValueError(f"`{name}` must be a finite number; got {value!r}.")
    if not (t0 <= t_start < t_end) or renormalize <= 0:
        raise ValueError(f"Need t0 ≤ t_start < t_end and renormalize > 0; got {times}.")
    n = (t_end - t_start) / renormalize
    if abs(n - round(n)) > 1e-9 * max(1.0, n):
        raise ValueError(f"(t_end − t_start)/renormalize must be a whole number; got {n}.")
    state0 = model.initial_state()
    if mean0 is not None:
        state0 = eqx.tree_at(lambda s: s.mean, state0, jnp.asarray(mean0, float))
    _check_state0(model, state0)
    dim = state0.mean.shape[0]
    v0 = jnp.ones(dim) if tangent0 is None else jnp.asarray(tangent0, float)
    if v0.shape != (dim,) or not np.all(np.isfinite(v0)) or not np.any(v0 != 0):
        raise ValueError(f"`tangent0` must be a finite nonzero vector of shape ({dim},).")
    dtype = jnp.result_type(float)
    return _lyapunov(model, state0.mean, v0.astype(dtype), jnp.asarray(t0, dtype),
                     jnp.asarray(t_start, dtype), jnp.asarray(renormalize, dtype),
                     int(round(n)), config)
