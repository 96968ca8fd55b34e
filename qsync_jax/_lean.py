r"""The lean loop: one explicit Runge–Kutta solve as one ``while`` loop, and its reverse mode.

:func:`lean_solve` integrates a flat state vector with a Diffrax tableau stepped as straight-line
code (:mod:`qsync_jax._solvers`), Diffrax's PID controller, saves and a stop condition fused into
one loop body. :func:`qsync_jax.evolve` and :func:`qsync_jax.time_average` use it by default
(``SolverConfig(loop="auto")``).

**Derivatives.** ``ForwardMode`` differentiates the loop forward (a plain ``while`` loop).
``RecursiveCheckpointAdjoint`` gives reverse mode, in one of two ways:

- a solve that keeps only its final state (``ts=None``: the transient and the window of a time
  average) is differentiated by the **discrete adjoint** of the accepted steps. With the step
  sizes held fixed, as Diffrax's controller holds them (it stops the gradient of its step-size
  factor), the solution is the composition $y_{k+1} = \Psi(t_k, h_k, y_k; \theta)$ of the
  method's steps, and its vector–Jacobian product runs backwards through them:

  $$\lambda_N = \bar y_N,\qquad \lambda_k = \Big(\frac{\partial\Psi_k}{\partial y}\Big)^{\!\top}
    \lambda_{k+1},\qquad \bar\theta = \sum_k \Big(\frac{\partial\Psi_k}{\partial\theta}
    \Big)^{\!\top}\lambda_{k+1},$$

  each term one ``jax.vjp`` of the step's straight-line stages. With respect to y0 and the
  parameters it is the derivative Diffrax's own reverse mode computes, to rounding, without
  differentiating the loop's bookkeeping (controller, clipping, checks). The forward pass
  stores the loop's state every K accepted steps (``checkpoints`` of them, default
  $\lceil\sqrt{\text{max\_steps}}\,\rceil$, and K = ⌈max_steps / checkpoints⌉); the backward
  pass recomputes one segment of K steps at a time from its checkpoint, storing its states,
  and runs back through it. Memory: checkpoints + K
  states; work: about two forward solves plus one vector–Jacobian product per step. The
  end points get the exact solution's sensitivities, $\bar t_1 = \lambda_N\cdot f(t_1, y_N)$ and
  $\bar t_0 = -\lambda_0\cdot f(t_0, y_0)$ (accurate to the solver's tolerance; Diffrax's, which
  moves the step times with t0, differ from them at that level; a solve that stopped before
  t1 does not depend on t1). Array values the vector field closes over are differentiated too
  (``jax.closure_convert``); the non-array leaves of ``args`` stay static.
- a solve that saves at given times (dense output) runs the loop under Equinox's checkpointed
  ``while`` loop, which reverse-mode differentiates the whole loop body.
"""

import math

import diffrax as dfx
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp

from ._solvers import _stages, explicit_tableau


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

CLIP_ULPS = 100
"""A step that ends within this many units in the last place below t1 is made to end at t1."""


def floats_before(x, n: int):
    """The n-th floating-point number below ``x`` (finite): n steps of ``nextafter(·, −∞)``,
    in one integer subtraction on the bit pattern, mapped to integers in the order of the floats
    (Diffrax's loop takes the n steps one by one, a chain of n operations to trace and compile;
    the two agree except within n steps above 0, where Diffrax's first step below 0 goes to
    −``finfo.tiny``). Carries no derivative."""
    x = jax.lax.stop_gradient(x)
    int_type = jnp.dtype(f"int{8 * x.dtype.itemsize}")
    lowest = jnp.iinfo(int_type).min
    bits = jax.lax.bitcast_convert_type(x, int_type)
    key = jnp.where(bits < 0, lowest - bits, bits) - n  # ±0 ↦ 0, below 0 negative
    return jax.lax.bitcast_convert_type(jnp.where(key < 0, lowest - key, key), x.dtype)


def _buffers(state: _State):
    return state.saved_ts, state.saved_ys


class _Loop:
    """The lean loop of one solve: its initial state, condition and body (``lean_solve``), and
    the step with a given size (for the discrete adjoint)."""

    def __init__(self, field, t0, t1, args, *, solver, controller, save, ts, stop, kind):
        self.field, self.t0, self.t1, self.args = field, t0, t1, args
        self.tableau = explicit_tableau(solver)
        self.solver, self.controller, self.save, self.ts, self.stop = (
            solver, controller, save, ts, stop)
        self.kind = kind
        self.error_order = solver.error_order(dfx.ODETerm(field))
        # a step ending beyond t1 less 100 ULPs is clipped to end at t1 (as in Diffrax)
        self.t1_floor = floats_before(t1, CLIP_ULPS)
        # the save times and an infinite end marker (_save_between)
        self.marked_ts = None if ts is None else jnp.append(ts, jnp.inf)

    def start(self, y0, dt0):
        """The controller's first step and state (with ``dt0=None`` Hairer's initial step, which
        carries no derivative)."""
        return self.controller.init(
            dfx.ODETerm(self.field), self.t0, self.t1, y0, dt0, self.args,
            lambda terms, t, y, args: terms.vf(t, y, args), self.error_order,
        )

    def init(self, y0, start) -> _State:
        """The loop's state at t0, from the controller's ``start``."""
        field, args, t0, t1, ts = self.field, self.args, self.t0, self.t1, self.ts
        tnext, controller_state = start
        save_index = saved_ts = saved_ys = None
        if ts is not None:  # times at t0 are saved before the first step
            at_t0 = ts <= t0
            save_index, saved_ts = jnp.sum(at_t0), jnp.where(at_t0, t0, jnp.inf)
            saved_ys = jax.tree_util.tree_map(
                lambda x: jnp.where(jnp.reshape(at_t0, (-1,) + (1,) * x.ndim), x, jnp.inf),
                self.save(t0, y0, args),
            )
        return _State(
            tprev=t0, tnext=jnp.minimum(tnext, t1), y=y0,
            f=field(t0, y0, args) if self.tableau.fsal else None,
            controller_state=controller_state, result=dfx.RESULTS.successful,
            num_steps=jnp.array(0), save_index=save_index, saved_ts=saved_ts, saved_ys=saved_ys,
        )

    def cond(self, state: _State):
        return (state.tprev < self.t1) & (state.result == dfx.RESULTS.successful)

    def _save_between(self, state, keep, interpolation):
        """Saves at the times ts[i] in (tprev, tnext] of an accepted step, by dense output.

        The times are read from ts with an infinite time appended, which ends the loop once all
        are saved. It also keeps the save inside this loop: read from ts of one time, t would be
        a constant of the loop, and XLA would hoist the save (dense output, ``save``, the health
        check's eigenvalues) out of it into the solver's step, computing it at every step. Under
        ``vmap`` a lane with nothing left to save still runs the body while others save; its t
        is held inside its step (the dense output at t = ∞ would give 0·∞ = NaN derivatives)."""
        ts, marked = self.ts, self.marked_ts

        def cond(s):
            index, _, _ = s
            return keep & (marked[index] <= state.tnext)

        def body(s):
            index, out_ts, out_ys = s
            t = jnp.minimum(marked[index], state.tnext)
            out_ys = jax.tree_util.tree_map(
                lambda x, buffer: buffer.at[index].set(x),
                self.save(t, interpolation.evaluate(t), self.args), out_ys,
            )
            return index + 1, out_ts.at[index].set(t), out_ys

        return eqxi.while_loop(
            cond, body, (state.save_index, state.saved_ts, state.saved_ys),
            max_steps=len(ts), buffers=lambda s: s[1:], kind=self.kind, checkpoints=len(ts),
        )

    def body(self, state: _State) -> _State:
        field, args, t1, tableau = self.field, self.args, self.t1, self.tableau
        h = state.tnext - state.tprev
        f0 = state.f if tableau.fsal else field(state.tprev, state.y, args)
        y1, y_error, fs = _stages(
            lambda t, y: field(t, y, args), state.tprev, h, state.y, f0, tableau
        )
        y_error = jnp.where(jnp.isnan(y_error), jnp.inf, y_error)
        keep, tprev, tnext, _, controller_state, result = self.controller.adapt_step_size(
            state.tprev, state.tnext, state.y, y1, args, y_error, self.error_order,
            state.controller_state,
        )
        tprev = jnp.minimum(tprev, t1)
        tnext = jnp.where(tnext > self.t1_floor,
                          jnp.where(keep, t1, tprev + 0.5 * (t1 - tprev)), tnext)
        underflow = tnext - tprev <= UNDERFLOW_ULPS * jnp.finfo(tprev.dtype).eps * jnp.abs(tprev)
        result = dfx.RESULTS.where(underflow & (tprev < t1), dfx.RESULTS.dt_min_reached, result)
        y = jnp.where(keep, y1, state.y)
        if self.stop is not None:
            result = dfx.RESULTS.where(keep & self.stop(tprev, y, args),
                                       dfx.RESULTS.event_occurred, result)
        save_index, saved_ts, saved_ys = state.save_index, state.saved_ts, state.saved_ys
        if self.ts is not None:
            interpolation = self.solver.interpolation_cls(
                t0=state.tprev, t1=state.tnext, y0=state.y, y1=y1, k=h * jnp.stack(fs)
            )
            save_index, saved_ts, saved_ys = self._save_between(state, keep, interpolation)
        return _State(
            tprev=tprev, tnext=tnext, y=y,
            f=jnp.where(keep, fs[-1], state.f) if tableau.fsal else None,
            controller_state=controller_state, result=result, num_steps=state.num_steps + 1,
            save_index=save_index, saved_ts=saved_ts, saved_ys=saved_ys,
        )

    def result(self, final: _State):
        return dfx.RESULTS.where(self.cond(final), dfx.RESULTS.max_steps_reached, final.result)


def lean_solve(field, y0, t0, t1, args, *, solver, controller: dfx.PIDController, adjoint,
               max_steps: int, dt0, save, ts=None, stop=None) -> LeanSolution:
    r"""Integrate the flat state ``y0`` from ``t0`` to ``t1`` with an explicit tableau.

    **Arguments:** ``field(t, y, args)`` the vector field of the flat state; ``solver`` a solver
    with :func:`qsync_jax._solvers.explicit_tableau`; ``controller`` a
    ``diffrax.PIDController`` (its step-size rule, initial step and error norm are used as they
    are); ``adjoint`` one with a :func:`loop_kind` (module docstring: how each is
    differentiated); ``max_steps``, ``dt0`` as in ``diffeqsolve`` (``dt0=None``: the
    controller's initial step for an ODE, as :mod:`qsync_jax._solvers` says); ``save(t, y,
    args)`` what is saved, at the times ``ts`` (dense output between steps) or, with
    ``ts=None``, once at the end; ``stop(t, y, args)`` a boolean checked after every accepted
    step that ends the solve with ``RESULTS.event_occurred``.

    The result codes are Diffrax's: ``max_steps_reached`` when the budget runs out,
    ``event_occurred`` when ``stop`` fires, and ``dt_min_reached`` when the step size has
    collapsed to ``UNDERFLOW_ULPS`` units in the last place of t or less, where the time grid no
    longer resolves the steps (a finite-time blow-up; a non-finite vector field, whose steps are
    all rejected).
    """
    kind = loop_kind(adjoint)
    options = dict(solver=solver, controller=controller, stop=stop)
    if kind == "checkpointed" and ts is None:
        # The step times are held fixed (the derivatives in t0 and t1 come from the end-point
        # formulas), so the controller's first step carries no derivative.
        start = jax.lax.stop_gradient(
            _Loop(field, t0, t1, args, save=None, ts=None, kind="lax", **options).start(y0, dt0))
        arrays, static = eqx.partition(args, eqx.is_array)
        converted, consts = jax.closure_convert(_of_arrays(field, static), t0, y0, arrays)
        y, t, result, num_steps = _final_state(
            (y0, t0, t1, arrays, tuple(consts)), converted, start,
            {**options, "stop": _of_arrays(stop, static)}, max_steps, adjoint.checkpoints)
        saved = jax.tree_util.tree_map(lambda x: x[None], save(t, y, args))
        return LeanSolution(ts=t[None], ys=saved, result=result,
                            stats={"num_steps": num_steps})
    loop = _Loop(field, t0, t1, args, save=save, ts=ts, kind=kind, **options)
    final = eqxi.while_loop(
        loop.cond, loop.body, loop.init(y0, loop.start(y0, dt0)), max_steps=max_steps,
        buffers=_buffers, kind=kind, checkpoints=getattr(adjoint, "checkpoints", None),
    )
    saved_ts, saved_ys = final.saved_ts, final.saved_ys
    if ts is None:
        saved_ts = final.tprev[None]
        saved_ys = jax.tree_util.tree_map(lambda x: x[None], save(final.tprev, final.y, args))
    return LeanSolution(ts=saved_ts, ys=saved_ys, result=loop.result(final),
                        stats={"num_steps": final.num_steps})


# ------------------------------------------------------------------ the discrete adjoint


def _of_arrays(fn, static):
    """``fn(t, y, args)`` as a function of the array leaves of ``args`` (``static`` the rest)."""
    if fn is None:
        return None
    return lambda t, y, arrays: fn(t, y, eqx.combine(arrays, static))


def _segments(max_steps: int, checkpoints: int | None) -> tuple[int, int]:
    """(number of checkpoints, accepted steps K between two) covering ``max_steps`` steps."""
    count = math.ceil(math.sqrt(max_steps)) if checkpoints is None else int(checkpoints)
    return count, math.ceil(max_steps / count)


def _field(converted, consts):
    """The vector field, from its closure-converted form and the values it closed over."""
    return lambda t, y, args: converted(t, y, args, *consts)


def _loop_of(inputs, converted, options) -> _Loop:
    _, t0, t1, args, consts = inputs
    return _Loop(_field(converted, consts), t0, t1, args, save=None, ts=None, kind="lax",
                 **options)


def _step(field, tableau, t, h, y, args):
    """The method's step of size h from (t, y): y₁ = Ψ(t, h, y; args)."""
    return _stages(lambda t, y: field(t, y, args), t, h, y, field(t, y, args), tableau)[0]


def _accepted(old: _State, new: _State):
    """An accepted step is one that advanced the time (a rejected step keeps ``tprev``)."""
    return new.tprev != old.tprev


@eqx.filter_custom_vjp
def _final_state(inputs, converted, start, options, max_steps, checkpoints):
    """(y(t1), the time reached, result, steps) of the lean loop from ``inputs`` = (y0, t0, t1,
    args, consts) with the field ``converted(t, y, args, *consts)`` (``jax.closure_convert``)
    and the controller's ``start``; reverse mode: the discrete adjoint (module docstring)."""
    loop = _loop_of(inputs, converted, options)
    final = eqxi.while_loop(loop.cond, loop.body, loop.init(inputs[0], start),
                            max_steps=max_steps, kind="lax")
    return final.y, final.tprev, loop.result(final), final.num_steps


@_final_state.def_fwd
def _final_state_fwd(perturbed, inputs, converted, start, options, max_steps, checkpoints):
    """The solve, storing the loop's state every K accepted steps (row ``count``: a scratch row
    written by the other steps)."""
    loop = _loop_of(inputs, converted, options)
    count, per = _segments(max_steps, checkpoints)
    state0 = loop.init(inputs[0], start)
    stored = jax.tree_util.tree_map(
        lambda x: jnp.zeros((count + 1, *jnp.shape(x)), jnp.result_type(x)).at[0].set(x), state0)

    def body(carry):
        state, accepted, stored = carry
        new = loop.body(state)
        step_accepted = _accepted(state, new)
        accepted = accepted + step_accepted.astype(accepted.dtype)
        row = jnp.where(step_accepted & (accepted % per == 0), accepted // per, count)
        stored = jax.tree_util.tree_map(lambda b, x: b.at[row].set(x), stored, new)
        return new, accepted, stored

    final, accepted, stored = eqxi.while_loop(
        lambda carry: loop.cond(carry[0]), body, (state0, jnp.array(0), stored),
        max_steps=max_steps, kind="lax",
    )
    out = (final.y, final.tprev, loop.result(final), final.num_steps)
    return out, (stored, accepted, final.y, final.tprev)


@_final_state.def_bwd
def _final_state_bwd(residuals, grad_obj, perturbed, inputs, converted, start, options,
                     max_steps, checkpoints):
    stored, accepted, y_final, t_final = residuals
    y0, t0, _, args, consts = inputs
    loop = _loop_of(inputs, converted, options)
    _, per = _segments(max_steps, checkpoints)
    # only the arrays being differentiated: every other one would cost reductions in each step
    params, static = eqx.partition((args, consts), (perturbed[3], perturbed[4]))
    y_bar = jnp.zeros_like(y_final) if grad_obj[0] is None else grad_obj[0]

    def step(t, h, y, params):
        args, consts = eqx.combine(params, static)
        return _step(_field(converted, consts), loop.tableau, t, h, y, args)

    def segment(carry):
        """Back through the accepted steps j·K … j·K + m − 1, recomputed from checkpoint j."""
        j, lam, grads = carry
        # m = 0 for a finished lane of a vmapped solve (j < 0) while other lanes go on
        m = jnp.where(j >= 0, jnp.minimum(per, accepted - j * per), 0)
        times = jnp.zeros((per + 1, 2), t_final.dtype)
        states = jnp.zeros((per + 1, *y_final.shape), y_final.dtype)

        def forward(c):
            state, i, times, states = c
            new = loop.body(state)
            step_accepted = _accepted(state, new)
            row = jnp.where(step_accepted, i, per)
            times = times.at[row].set(jnp.stack([state.tprev, state.tnext - state.tprev]))
            return new, i + step_accepted.astype(i.dtype), times, states.at[row].set(state.y)

        start = jax.tree_util.tree_map(lambda b: b[jnp.maximum(j, 0)], stored)
        _, _, times, states = eqxi.while_loop(
            lambda c: (c[1] < m) & loop.cond(c[0]), forward,
            (start, jnp.array(0), times, states), max_steps=max_steps, kind="lax")

        def backward(i, c):
            lam, grads = c
            k = m - 1 - i
            _, vjp = jax.vjp(lambda y, p: step(times[k, 0], times[k, 1], y, p), states[k], params)
            dy, dp = vjp(lam)
            return dy, jax.tree_util.tree_map(jnp.add, grads, dp)

        lam, grads = jax.lax.fori_loop(0, m, backward, (lam, grads))
        return j - 1, lam, grads

    zero = jax.tree_util.tree_map(jnp.zeros_like, params)
    last = (accepted + per - 1) // per - 1
    _, lam, grads = jax.lax.while_loop(lambda c: c[0] >= 0, segment, (last, y_bar, zero))
    g_args, g_consts = grads
    t_bar = jnp.zeros_like(t_final) if grad_obj[1] is None else grad_obj[1]
    reached = t_final == inputs[2]  # a solve that stopped early does not depend on t1
    t1_bar = jnp.where(reached, jnp.vdot(y_bar, loop.field(t_final, y_final, args)) + t_bar, 0.0)
    t0_bar = -jnp.vdot(lam, loop.field(t0, y0, args))
    grad = (lam, t0_bar, t1_bar, g_args, g_consts)
    return jax.tree_util.tree_map(lambda p, g: g if p else None, perturbed, grad)
