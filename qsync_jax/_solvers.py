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

- :func:`qsync_jax._lean.lean_solve`: a whole solve in one ``while`` loop of its own (a flat
  state vector, the stages, Diffrax's PID controller, saves and the divergence check fused into
  one loop body; reverse mode by the discrete adjoint of its steps).
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
    """One explicit Runge–Kutta step from (t0, y0) with f0 = field(t0, y0): (y1, error, fs).

    The stages call the field through one ``jax.jit``, so it is traced and lowered once per
    step function, not once per stage (XLA inlines the calls: the compiled step is equivalent,
    equal to rounding); ``benchmarks/bench_cli.py`` times a first solve's trace, lowering and
    compilation."""
    fs = [f0]
    field = jax.jit(field)
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
