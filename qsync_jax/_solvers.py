r"""Explicit Runge–Kutta methods of Diffrax, stepped with few operations per step.

Diffrax's Runge–Kutta solvers run their stages in an inner ``while`` loop that reads the Butcher
tableau and a buffer of stages at a dynamic index: general (implicit and multi-tableau methods
too), but for a small state each step then executes a few hundred tiny operations, and their
overhead, not the arithmetic, sets the cost. Here the stages of a Diffrax tableau are traced as
straight-line code,

$$k_i = h\,f\Big(t_0 + c_i h,\; y_0 + \sum_{j<i} a_{ij} k_j\Big),\qquad
  y_1 = y_0 + \sum_i b_i k_i,\qquad e = \sum_i (b_i - \hat b_i)\, k_i,$$

each stage sum one operation (:func:`_stage_sum`: a reduction alone, one fused chain of
additions under ``vmap``), with the method's first-same-as-last reuse, error estimate and dense
output. Two ways to use them:

- :func:`lean_solve`: a whole solve in one ``while`` loop of its own (a flat state vector, the
  stages, Diffrax's PID controller, saves and the divergence check fused into one loop body).
  :func:`qsync_jax.evolve` and :func:`qsync_jax.time_average` use it by default
  (``SolverConfig(loop="auto")``) for Diffrax's explicit tableaus with the default adjoints:
  the fastest variant for one trajectory and for batches (``vmap``, sweeps).
- :class:`Unrolled`: the same stages as a Diffrax solver, for ``diffeqsolve`` with any controller,
  adjoint or event; in a ``SolverConfig`` it selects Diffrax's loop.

From the same first step both take the same steps as Diffrax's own loop on the same tableau
and agree with it to rounding (``tests/test_solvers.py``; under ``vmap`` the rounding of the
stage sums differs, so adaptive steps may differ and answers agree to the tolerance). With
``dt0=None`` the lean loop starts from the controller's initial step for an ODE (Hairer's
algorithm), where ``diffeqsolve`` (Diffrax 0.7) starts from 0.01: then the answers agree to the
tolerance. Costs per step (µs and XLA operations) are measured in
``benchmarks/bench_batched_step.py``.
"""

import functools

import diffrax as dfx
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero


def _combine(y0, h, coefficients, fs):
    """y0 + h Σ_j c_j f_j over the nonzero c_j (Python floats: no tableau arrays traced)."""
    pairs = [(float(c), f) for c, f in zip(coefficients, fs) if c != 0]
    if not pairs:
        return y0
    return _stage_sum(tuple(c for c, _ in pairs))(y0, h, *(f for _, f in pairs))


def _weighted_sum(y0, h, weights, fs):
    """y0 + h Σ_j w_j f_j (y0 None: 0) as one reduction over the stacked y0 and f_j: XLA keeps
    the sum in memory, where a chain of additions would be fused into (and recomputed by) each
    of its consumers."""
    dtype = fs[0].dtype
    coefficients = h * jnp.asarray(np.asarray(weights), dtype=dtype)
    if y0 is not None:
        coefficients, fs = jnp.concatenate([jnp.ones((1,), dtype), coefficients]), [y0, *fs]
    return jnp.sum(coefficients[:, None] * jnp.stack(fs), axis=0)


@functools.cache
def _stage_sum(weights: tuple[float, ...]):
    r"""The function (y0, h, f_1, …, f_k) ↦ y0 + h Σ_j w_j f_j, fast alone and under ``vmap``.

    Alone, one reduction over the stacked y0 and stages: XLA keeps its result in memory, where a
    chain of additions would be fused into (and recomputed by) each consumer of the stage's
    state. Under ``vmap`` XLA's CPU reduction over the stage axis (wherever the batch axis is)
    costs several times the vector field; there (a custom batching rule) the sum is a chain of
    additions in the reduction's order, fused into one loop. Both forms agree to rounding;
    ``benchmarks/bench_batched_step.py`` measures µs per step alone and in batches. The
    derivative is one reduction of plain operations, which JAX can also transpose (reverse mode
    cannot pass through a custom batching rule).
    """

    @jax.custom_batching.custom_vmap
    def batched(y0, h, *fs):
        return _weighted_sum(y0, h, weights, fs)

    @batched.def_vmap
    def _(axis_size, in_batched, y0, h, *fs):
        y0, h, *fs = (x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x)))
                      for x, b in zip((y0, h, *fs), in_batched))
        h = jnp.reshape(h, (axis_size,) + (1,) * (y0.ndim - 1))
        total = y0
        for c, f in zip(weights, fs):  # the reduction's order, as one fused chain
            total = total + (h * c) * f
        return total, True

    @jax.custom_jvp
    def stage_sum(y0, h, *fs):
        return batched(y0, h, *fs)

    @functools.partial(stage_sum.defjvp, symbolic_zeros=True)
    def _(primals, tangents):
        # dy0 + h Σ w_j df_j + dh Σ w_j f_j over the nonzero tangents, one reduction.
        (y0, h, *fs), (dy0, dh, *dfs) = primals, tangents
        nonzero = [(c, df) for c, df in zip(weights, dfs) if not isinstance(df, SymbolicZero)]
        dy0 = None if isinstance(dy0, SymbolicZero) else dy0
        if nonzero:
            tangent = _weighted_sum(dy0, h, *zip(*nonzero))
        else:
            tangent = jnp.zeros_like(y0) if dy0 is None else dy0
        if not isinstance(dh, SymbolicZero):
            tangent = tangent + dh * _weighted_sum(None, 1.0, weights, fs)
        return stage_sum(y0, h, *fs), tangent

    return stage_sum


def _stages(field, t0, h, y0, f0, tableau: dfx.ButcherTableau):
    """One explicit Runge–Kutta step from (t0, y0) with f0 = field(t0, y0): (y1, error, fs)."""
    fs = [f0]
    for c, row in zip(tableau.c, tableau.a_lower):
        fs.append(field(t0 + float(c) * h, _combine(y0, h, row, fs)))
    y1 = _combine(y0, h, tableau.b_sol, fs)
    return y1, _combine(jnp.zeros_like(y0), h, tableau.b_error, fs), fs


def explicit_tableau(solver) -> dfx.ButcherTableau | None:
    """The Butcher tableau of an explicit one-tableau Runge–Kutta solver (or of the solver an
    :class:`Unrolled` wraps); None for any other solver."""
    solver = solver.solver if isinstance(solver, Unrolled) else solver
    tableau = getattr(type(solver), "tableau", None)
    ok = isinstance(solver, dfx.AbstractERK) and isinstance(tableau, dfx.ButcherTableau)
    return tableau if ok else None


class Unrolled(dfx.AbstractAdaptiveSolver):
    """A Diffrax explicit Runge–Kutta method with its stages unrolled (module docstring).

    **Argument:** ``solver``, an explicit Runge–Kutta solver of Diffrax with one Butcher tableau
    (default ``diffrax.Dopri8()``; also e.g. ``diffrax.Tsit5()``, ``diffrax.Dopri5()``). The
    result is a Diffrax solver for ordinary differential equations (``diffrax.ODETerm``): use it
    wherever ``diffeqsolve`` takes one (step-size controllers, ``SaveAt`` with dense output,
    events, every adjoint). States must be single arrays (as in :func:`qsync_jax.evolve`, which
    integrates one flat vector). In a :class:`qsync_jax.SolverConfig` it selects Diffrax's
    loop; the plain solver in the lean loop (the default) is faster, alone and in batches
    (module docstring).
    """

    solver: dfx.AbstractERK
    term_structure = dfx.ODETerm

    def __init__(self, solver: dfx.AbstractERK = dfx.Dopri8()):
        if isinstance(solver, Unrolled) or explicit_tableau(solver) is None:
            raise ValueError(
                "Unrolled takes an explicit Runge–Kutta solver of Diffrax with one Butcher "
                f"tableau (e.g. diffrax.Dopri8()); got {solver!r}."
            )
        self.solver = solver

    @property
    def interpolation_cls(self):
        return self.solver.interpolation_cls

    def order(self, terms):
        return self.solver.order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def init(self, terms, t0, t1, y0, args):
        """The first stage's vector field f(t0, y0) when the method reuses its last stage."""
        return terms.vf(t0, y0, args) if explicit_tableau(self).fsal else None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        tableau = explicit_tableau(self)
        if tableau.fsal:
            # After a jump in the vector field the stored last stage is stale: recompute it
            # (for all lanes of a vmapped solve, as Diffrax does).
            f0 = jax.lax.cond(
                eqxi.unvmap_any(made_jump),
                lambda: terms.vf(t0, y0, args),
                lambda: solver_state,
            )
        else:
            f0 = terms.vf(t0, y0, args)
        h = t1 - t0
        y1, y_error, fs = _stages(lambda t, y: terms.vf(t, y, args), t0, h, y0, f0, tableau)
        dense_info = dict(y0=y0, y1=y1, k=h * jnp.stack(fs))
        state = fs[-1] if tableau.fsal else None
        return y1, y_error, dense_info, state, dfx.RESULTS.successful


# ------------------------------------------------------------------------------ the lean loop


class LeanSolution(eqx.Module):
    """What :func:`lean_solve` returns; the fields a ``diffrax.Solution`` has of the same name.

    ``ts`` (T,) the save times reached (inf where not), ``ys`` the saved values (T, ...) (inf
    where not reached), ``result`` a ``diffrax.RESULTS``, ``stats`` ``{"num_steps": ...}``
    (accepted plus rejected steps).
    """

    ts: jax.Array
    ys: object
    result: dfx.RESULTS
    stats: dict


def loop_kind(adjoint) -> str | None:
    """The ``while`` loop :func:`lean_solve` uses for an adjoint (as Diffrax does): checkpointed
    for ``RecursiveCheckpointAdjoint``, plain for ``ForwardMode``; None for other adjoints."""
    if type(adjoint) is dfx.RecursiveCheckpointAdjoint:
        return "checkpointed"
    if type(adjoint) is dfx.ForwardMode:
        return "lax"
    return None


class _State(eqx.Module):
    tprev: jax.Array
    tnext: jax.Array
    y: jax.Array
    f: jax.Array | None
    controller_state: tuple
    result: dfx.RESULTS
    num_steps: jax.Array
    save_index: jax.Array | None
    saved_ts: jax.Array | None
    saved_ys: object


UNDERFLOW_ULPS = 10
"""A step of at most this many units in the last place of t ends the solve (``lean_solve``)."""


def _buffers(state: _State):
    return state.saved_ts, state.saved_ys


def lean_solve(field, y0, t0, t1, args, *, solver, controller: dfx.PIDController, adjoint,
               max_steps: int, dt0, save, ts=None, stop=None) -> LeanSolution:
    r"""Integrate the flat state ``y0`` from ``t0`` to ``t1`` with an explicit tableau.

    **Arguments:** ``field(t, y, args)`` the vector field of the flat state; ``solver`` a solver
    with :func:`explicit_tableau`; ``controller`` a ``diffrax.PIDController`` (its step-size
    rule, initial step and error norm are used as they are); ``adjoint`` one with a
    :func:`loop_kind`; ``max_steps``, ``dt0`` as in ``diffeqsolve`` (``dt0=None``: the
    controller's initial step for an ODE, module docstring); ``save(t, y, args)`` what
    is saved, at the times ``ts`` (dense output between steps) or, with ``ts=None``, once at
    the end; ``stop(t, y, args)`` a boolean checked after every accepted step that ends the
    solve with ``RESULTS.event_occurred``.

    The result codes are Diffrax's: ``max_steps_reached`` when the budget runs out,
    ``event_occurred`` when ``stop`` fires, and ``dt_min_reached`` when the step size has
    collapsed to ``UNDERFLOW_ULPS`` units in the last place of t or less, where the time grid no
    longer resolves the steps (a finite-time blow-up; a non-finite vector field, whose steps are
    all rejected).
    """
    tableau = explicit_tableau(solver)
    kind = loop_kind(adjoint)
    term = dfx.ODETerm(field)
    error_order = solver.error_order(term)
    tnext, controller_state = controller.init(
        term, t0, t1, y0, dt0, args, lambda terms, t, y, args: terms.vf(t, y, args), error_order
    )
    t1_floor = t1  # t1 less 100 ULPs: a step ending beyond this is clipped to end at t1
    for _ in range(100):
        t1_floor = eqxi.prevbefore(t1_floor)

    def clip(tprev, tnext, keep):
        return jnp.where(tnext > t1_floor, jnp.where(keep, t1, tprev + 0.5 * (t1 - tprev)), tnext)

    save_index = saved_ts = saved_ys = None
    if ts is not None:  # times at t0 are saved before the first step
        at_t0 = ts <= t0
        save_index, saved_ts = jnp.sum(at_t0), jnp.where(at_t0, t0, jnp.inf)
        saved_ys = jax.tree_util.tree_map(
            lambda x: jnp.where(jnp.reshape(at_t0, (-1,) + (1,) * x.ndim), x, jnp.inf),
            save(t0, y0, args),
        )
    state = _State(
        tprev=t0, tnext=jnp.minimum(tnext, t1), y=y0,
        f=field(t0, y0, args) if tableau.fsal else None,
        controller_state=controller_state, result=dfx.RESULTS.successful,
        num_steps=jnp.array(0), save_index=save_index, saved_ts=saved_ts, saved_ys=saved_ys,
    )

    def save_between(state, keep, interpolation):
        """Saves at the times ts[i] in (tprev, tnext] of an accepted step, by dense output."""

        def cond(s):
            index, _, _ = s
            return keep & (index < len(ts)) & (ts[jnp.minimum(index, len(ts) - 1)] <= state.tnext)

        def body(s):
            index, out_ts, out_ys = s
            t = ts[index]
            out_ys = jax.tree_util.tree_map(
                lambda x, buffer: buffer.at[index].set(x),
                save(t, interpolation.evaluate(t), args), out_ys,
            )
            return index + 1, out_ts.at[index].set(t), out_ys

        return eqxi.while_loop(
            cond, body, (state.save_index, state.saved_ts, state.saved_ys),
            max_steps=len(ts), buffers=lambda s: s[1:], kind=kind, checkpoints=len(ts),
        )

    def cond(state):
        return (state.tprev < t1) & (state.result == dfx.RESULTS.successful)

    def body(state):
        h = state.tnext - state.tprev
        f0 = state.f if tableau.fsal else field(state.tprev, state.y, args)
        y1, y_error, fs = _stages(
            lambda t, y: field(t, y, args), state.tprev, h, state.y, f0, tableau
        )
        y_error = jnp.where(jnp.isnan(y_error), jnp.inf, y_error)
        keep, tprev, tnext, _, controller_state, result = controller.adapt_step_size(
            state.tprev, state.tnext, state.y, y1, args, y_error, error_order,
            state.controller_state,
        )
        tprev = jnp.minimum(tprev, t1)
        tnext = clip(tprev, tnext, keep)
        underflow = tnext - tprev <= UNDERFLOW_ULPS * jnp.finfo(tprev.dtype).eps * jnp.abs(tprev)
        result = dfx.RESULTS.where(underflow & (tprev < t1), dfx.RESULTS.dt_min_reached, result)
        y = jnp.where(keep, y1, state.y)
        if stop is not None:
            result = dfx.RESULTS.where(keep & stop(tprev, y, args), dfx.RESULTS.event_occurred,
                                       result)
        save_index, saved_ts, saved_ys = state.save_index, state.saved_ts, state.saved_ys
        if ts is not None:
            interpolation = solver.interpolation_cls(
                t0=state.tprev, t1=state.tnext, y0=state.y, y1=y1, k=h * jnp.stack(fs)
            )
            save_index, saved_ts, saved_ys = save_between(state, keep, interpolation)
        return _State(
            tprev=tprev, tnext=tnext, y=y,
            f=jnp.where(keep, fs[-1], state.f) if tableau.fsal else None,
            controller_state=controller_state, result=result, num_steps=state.num_steps + 1,
            save_index=save_index, saved_ts=saved_ts, saved_ys=saved_ys,
        )

    final = eqxi.while_loop(
        cond, body, state, max_steps=max_steps, buffers=_buffers, kind=kind,
        checkpoints=getattr(adjoint, "checkpoints", None),
    )
    result = dfx.RESULTS.where(cond(final), dfx.RESULTS.max_steps_reached, final.result)
    saved_ts, saved_ys = final.saved_ts, final.saved_ys
    if ts is None:
        saved_ts = final.tprev[None]
        saved_ys = jax.tree_util.tree_map(lambda x: x[None], save(final.tprev, final.y, args))
    return LeanSolution(ts=saved_ts, ys=saved_ys, result=result,
                        stats={"num_steps": final.num_steps})
