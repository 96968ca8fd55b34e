r"""Time evolution of Gaussian models: Diffrax over the (mean, covariance) pytree.

For a model (see :mod:`qsync_jax._models._base`) with mean field f, drift A = ∂f/∂u and
diffusion D, the integrated state is the real pytree ``GaussianState(mean, cov)`` obeying

$$\dot{\bar u} = f(t, \bar u), \qquad \dot C = A\,C + C\,A^\top + D,
  \qquad A = A(t, \bar u),\; D = D(t, \bar u)$$

(conventions of :mod:`qsync_jax._gaussian`). Two entry points:

- :func:`evolve` saves the state, or only what ``save(t, state)`` returns, at given times;
- :func:`time_average` returns $\bar S = \frac{1}{t_b - t_a}\int_{t_a}^{t_b} S(t, \text{state})\,dt$
  with the integral carried as extra ODE states, so it is as accurate as the solve itself
  (no quadrature over a coarse grid).

Failures are values: every result carries a :class:`qsync_jax.Status`; with ``throw=True``
(the default) a failed solve raises an error with that status's message instead.
"""

import os
import warnings
from collections.abc import Callable

import diffrax as dfx
import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from ._checks import (
    average_status,
    check_arguments,
    check_physical,
    check_solver_config,
    guard_integrand,
    noise_floor,
    safe_times,
    safe_window,
    trajectory_status,
    warn_precision,
    with_health,
)
from ._gaussian import GaussianState, _as_real
from ._lean import lean_solve, loop_kind
from ._models._base import AbstractModel
from ._results import TimeAverage, Trajectory, _is_concrete
from ._solvers import Unrolled, explicit_tableau
from ._status import Status


class SolverConfig(eqx.Module):
    """How to integrate: solver, tolerances, step budget and adjoint (for gradients).

    **Arguments:**

    - ``solver``: a Diffrax solver. The default ``Dopri8`` (8th order, adaptive) takes several
      times fewer steps than ``Tsit5``/``Dopri5`` at ``rtol = atol = 1e-8`` on the
      optomechanical limit cycles (``benchmarks/bench_fig2a_point.py``).
    - ``rtol``, ``atol``: relative and absolute tolerances of the PID step-size controller.
    - ``max_steps``: step budget; a solve that needs more ends with ``Status.max_steps_reached``.
      The default covers transients of thousands of mechanical periods at tight tolerances.
    - ``dt0``: initial step; ``None`` lets the controller choose.
    - ``adjoint``: how to differentiate through the solve. ``RecursiveCheckpointAdjoint``
      (reverse mode, memory bounded by its ``checkpoints``): in the lean loop a solve that keeps
      its final state (the transient and window of :func:`time_average`) is differentiated by
      the discrete adjoint of its steps (:mod:`qsync_jax._lean`: Diffrax's derivative at a
      fraction of the cost, ``benchmarks/bench_gradients.py``); ``ForwardMode`` is cheaper
      still for a few parameters.
    - ``loop``: ``"auto"`` (default) steps explicit Runge–Kutta tableaus of Diffrax (``Dopri8``,
      ``Tsit5``, ...) with ``RecursiveCheckpointAdjoint`` or ``ForwardMode`` in the lean loop of
      :func:`qsync_jax._lean.lean_solve` (Diffrax's controller and results, a fraction of its
      operations per step): the fastest both for one trajectory and in batches (``vmap``,
      :func:`qsync_jax.sweep`; ``benchmarks/bench_batched_step.py``,
      ``benchmarks/bench_sweep.py``). ``solver=qsync_jax.Unrolled()`` runs the same method in
      Diffrax's loop. Every other combination, or ``"diffrax"``, runs ``diffrax.diffeqsolve``.
    """

    solver: dfx.AbstractSolver = dfx.Dopri8()
    rtol: float = 1e-8
    atol: float = 1e-8
    max_steps: int = eqx.field(static=True, default=1_000_000)
    dt0: float | None = None
    adjoint: dfx.AbstractAdjoint = dfx.RecursiveCheckpointAdjoint()
    loop: str = eqx.field(static=True, default="auto")

    def __check_init__(self):
        check_solver_config(self)
        if self.loop not in ("auto", "diffrax"):
            raise ValueError(f"`loop` must be 'auto' or 'diffrax'; got {self.loop!r}.")


def _vector_field(t, y, model: AbstractModel):
    return model.vector_field(t, y)


def _check_state0(model: AbstractModel, state0) -> None:
    model.check_state(state0, "state0")
    check_physical(state0)


def _deprecated_path(path) -> None:
    if path not in (None, "auto", "dense", "bloch"):
        raise ValueError(f'`path` (deprecated, ignored) must be None; got {path!r}.')
    if path is not None:
        warnings.warn(
            "`path` is deprecated and ignored: the model decides how it is integrated (uniform "
            "rings from qs.optomechanical_ring are integrated in Bloch blocks; "
            "qs.OptomechanicalRing.to_network() gives the dense network).",
            DeprecationWarning,
            stacklevel=3,
        )


def _check_times(name: str, ts, t0) -> None:
    if jnp.ndim(ts) != 1 or jnp.shape(ts)[0] < 1:
        raise ValueError(f"{name} must be a non-empty 1-D array; got shape {jnp.shape(ts)}.")
    if _is_concrete(ts, t0):
        ts_np, t0_np = np.asarray(ts), np.asarray(t0)
        if not (np.all(np.isfinite(ts_np)) and np.isfinite(t0_np)):
            raise ValueError(f"{name} and t0 must be finite.")
        if np.any(np.diff(ts_np) <= 0):
            raise ValueError(f"{name} must be strictly increasing; got {ts_np}.")
        if ts_np[0] < t0_np:
            raise ValueError(f"{name} must start at or after t0 = {float(t0_np)}; got {ts_np[0]}.")


DENSE_STEP_BUFFERS = 16
"""State-sized arrays one step holds at once (Runge–Kutta stages, error estimate, drift and its
products): the basis of the memory estimate made before a solve."""


def _check_dense_memory(model, state0, n_saves: int, save) -> None:
    """``MemoryError``, before any work, when a solve cannot fit in memory.

    Estimate: ``DENSE_STEP_BUFFERS`` copies of the model's state (for a Gaussian model, mostly its
    (2n)² covariance) for a step, plus ``n_saves`` saved values (full states, or the output of
    ``save``). The limit is the device's memory where JAX reports it (GPUs), the machine's
    physical memory otherwise.
    """
    def nbytes(tree):
        return sum(
            int(np.prod(jnp.shape(x))) * jnp.dtype(x.dtype).itemsize
            for x in jax.tree_util.tree_leaves(tree)
        )

    saved = state0 if save is None else jax.eval_shape(save, jnp.zeros((), float), state0)
    needed = DENSE_STEP_BUFFERS * nbytes(state0) + n_saves * nbytes(saved)
    stats = jax.local_devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > limit:
        raise MemoryError(
            f"Integrating {type(model).__name__} ({nbytes(state0) / 2**20:.1f} MiB per state, "
            f"{n_saves} saves) needs about {needed / 2**30:.1f} GiB, more than the "
            f"{limit / 2**30:.1f} GiB available. Use a structured model (a uniform ring: "
            f"qs.optomechanical_ring, O(N) memory), fewer modes, fewer save times, or `save=` to "
            f"keep less per save."
        )


def _save_state(t, y, args):
    return y


DIVERGENCE_BOUND = 1e150
"""A state with any entry beyond this magnitude (or non-finite) has diverged: the solve stops."""


def _diverged(t, y, args, **kwargs):
    """Event on the flat state: true once an entry is NaN or beyond DIVERGENCE_BOUND."""
    return ~(jnp.max(jnp.abs(y)) <= min(DIVERGENCE_BOUND, float(jnp.finfo(y.dtype).max)))


def _solve(model, y0, t0, t1, config: SolverConfig, save, *, ts=None, vector_field=None):
    """One solve of the pytree ``y0``, integrated as one flat vector (the lean loop or Diffrax:
    ``SolverConfig.loop``).

    A single flat state keeps every solver stage one fused vector operation (each extra leaf
    costs time per step). ``save(t, y)`` receives the pytree; it is saved at ``ts``, or at
    ``t1`` when ``ts`` is None.
    """
    flat0, unravel = jax.flatten_util.ravel_pytree(y0)
    field = _vector_field if vector_field is None else vector_field

    def flat_field(t, y, args):
        return jax.flatten_util.ravel_pytree(field(t, unravel(y), args))[0]

    controller = dfx.PIDController(rtol=config.rtol, atol=config.atol)
    lean = (explicit_tableau(config.solver) is not None and loop_kind(config.adjoint) is not None
            and not isinstance(config.solver, Unrolled))  # Unrolled: Diffrax's loop
    if config.loop == "auto" and lean:
        return lean_solve(
            flat_field, flat0, t0, t1, model, solver=config.solver, controller=controller,
            adjoint=config.adjoint, max_steps=config.max_steps, dt0=config.dt0,
            save=lambda t, y, args: save(t, unravel(y), args), ts=ts, stop=_diverged,
        )
    saveat = dfx.SaveAt(t1=ts is None, ts=ts, fn=lambda t, y, args: save(t, unravel(y), args))
    return dfx.diffeqsolve(
        dfx.ODETerm(flat_field),
        config.solver,
        t0,
        t1,
        config.dt0,
        flat0,
        args=model,
        saveat=saveat,
        stepsize_controller=controller,
        adjoint=config.adjoint,
        max_steps=config.max_steps,
        event=dfx.Event(_diverged),
        throw=False,
    )


@eqx.filter_jit
def _evolve(model, ts, t0, state0, config, save, throw):
    fn = _save_state if save is None else (lambda t, y, args: save(t, y))
    saves, t0, valid = safe_times(ts, t0)
    floor = noise_floor(model, state0)
    sol = _solve(model, state0, t0, saves[-1], config, with_health(fn, floor), ts=saves)
    status, ys = trajectory_status(sol.result, sol.ts, sol.ys, valid)
    if throw:
        ys = status.error_if(ys, status != Status.success)
    return Trajectory(ts=ts, states=ys, status=status, num_steps=sol.stats["num_steps"])


def evolve(
    model: AbstractModel,
    ts: Float[Array, " T"],
    *,
    state0: GaussianState | None = None,
    t0: float = 0.0,
    config: SolverConfig = SolverConfig(),
    save: Callable[[Float[Array, ""], GaussianState], PyTree] | None = None,
    throw: bool = True,
    path: str | None = None,
) -> Trajectory:
    """Integrate mean and covariance of ``model`` and save at times ``ts``.

    **Main arguments:**

    - ``model``: any :class:`qsync_jax.AbstractModel`.
    - ``ts``: strictly increasing save times, all ≥ ``t0``; the solve ends at ``ts[-1]``.

    **Other arguments:**

    - ``state0``: initial state, of the model's state type (a ``GaussianState``, or e.g. a
      :class:`qsync_jax.RingState` for a ring); default ``model.initial_state()`` (zero mean,
      each mode thermal at its bath's occupation).
    - ``t0``: initial time (default 0).
    - ``config``: a :class:`SolverConfig`.
    - ``save``: if given, only ``save(t, state)`` is kept at each save time (memory stays flat
      for long runs). Pass a module-level function: a new lambda per call recompiles.
    - ``throw``: raise on failure (default). With ``throw=False`` the result carries the status
      and its values are those reached (NaN or inf where the dynamics diverged).
    - ``path``: deprecated and ignored: the model alone decides how it is integrated (a uniform
      ring from :func:`qsync_jax.optomechanical_ring` in Bloch blocks, O(N) per step).

    A solve that cannot fit in memory raises ``MemoryError`` before starting.

    Works under ``jax.jit``, ``jax.vmap`` (over models, ``ts`` or ``state0``) and ``jax.grad``.
    """
    check_arguments(model, config, AbstractModel, save=save)
    ts = _as_real(ts, "`ts`")
    _check_times("ts", ts, t0)
    warn_precision(config)
    _deprecated_path(path)
    state0 = model.initial_state() if state0 is None else state0
    _check_state0(model, state0)
    _check_dense_memory(model, state0, ts.shape[0], save)
    ts = ts.astype(jnp.result_type(float))
    return _evolve(model, ts, jnp.asarray(t0, ts.dtype), state0, config, save, throw)


@eqx.filter_jit
def _time_average(model, window, t0, state0, config, fn, throw):
    window, t0, valid = safe_window(window, t0)
    t_a, t_b = window[0], window[1]
    transient = _solve(model, state0, t0, t_a, config, _save_state)
    state_a = jax.tree_util.tree_map(lambda x: x[-1], transient.ys)
    integrand = guard_integrand(fn)
    acc0 = jax.tree_util.tree_map(jnp.zeros_like, integrand(t_a, state_a))

    def augmented(t, y, model):
        state, _ = y
        return _vector_field(t, state, model), integrand(t, state)

    window_sol = _solve(
        model, (state_a, acc0), t_a, t_b, config, _save_state, vector_field=augmented
    )
    state_b, (acc, undefined_time) = jax.tree_util.tree_map(lambda x: x[-1], window_sol.ys)
    value = jax.tree_util.tree_map(lambda x: x / (t_b - t_a), acc)
    status, value, state_b = average_status(
        model, (transient.result, window_sol.result), state_a, state_b, value, undefined_time,
        valid, noise_floor(model, state0),
    )
    if throw:
        value = status.error_if(value, status != Status.success)
    num_steps = transient.stats["num_steps"] + window_sol.stats["num_steps"]
    return TimeAverage(value=value, state=state_b, status=status, num_steps=num_steps)


def time_average(
    model: AbstractModel,
    fn: Callable[[Float[Array, ""], GaussianState], PyTree],
    window: tuple[float, float],
    *,
    state0: GaussianState | None = None,
    t0: float = 0.0,
    config: SolverConfig = SolverConfig(),
    throw: bool = True,
    path: str | None = None,
    method: str = "direct",
    **floquet_options,
) -> TimeAverage:
    r"""Time average $\frac{1}{t_b - t_a}\int_{t_a}^{t_b} \mathrm{fn}(t, \text{state}(t))\,dt$.

    The system is integrated from ``t0`` to ``t_a`` (transient, nothing saved), then from
    ``t_a`` to ``t_b`` with the running integral of ``fn`` appended to the ODE state, so the
    average is controlled by the same tolerances as the dynamics.

    **Main arguments:**

    - ``model``: any :class:`qsync_jax.AbstractModel`.
    - ``fn``: ``fn(t, state) -> pytree of arrays`` (e.g. S_c and S_p of two modes). Pass a
      module-level function or ``functools.partial``: a new lambda per call recompiles.
    - ``window``: ``(t_a, t_b)`` with ``t0 ≤ t_a < t_b``.

    **Other arguments:** ``state0``, ``t0``, ``config``, ``throw``, ``path`` as in
    :func:`evolve` (``fn`` receives the model's state type, e.g. a :class:`qsync_jax.RingState`
    for a ring). ``method``: ``"direct"`` (default) integrates the window; ``"floquet"``
    integrates only the transient and a few periods of the locked limit cycle and obtains the
    window by Floquet propagation of the covariance (Gaussian models; keywords
    ``t_transient``, ``options``, ``max_periods``: :func:`qsync_jax._floquet.floquet_time_average`).
    """
    check_arguments(model, config, AbstractModel, fn=fn)
    if method == "floquet":
        from ._floquet import floquet_time_average

        return floquet_time_average(model, fn, window, state0=state0, t0=t0, config=config,
                                    throw=throw, **floquet_options)
    if method != "direct" or floquet_options:
        raise ValueError(f"`method` must be 'direct' or 'floquet' (Floquet keywords only with "
                         f"'floquet'); got {method!r} with {sorted(floquet_options)}.")
    window = _as_real(window, "`window`")
    if jnp.shape(window) != (2,):
        raise ValueError(f"window must be (t_a, t_b); got shape {jnp.shape(window)}.")
    _check_times("window", window, t0)
    warn_precision(config)
    _deprecated_path(path)
    state0 = model.initial_state() if state0 is None else state0
    _check_state0(model, state0)
    _check_dense_memory(model, state0, 1, None)
    window = window.astype(jnp.result_type(float))
    return _time_average(model, window, jnp.asarray(t0, window.dtype), state0, config, fn, throw)

