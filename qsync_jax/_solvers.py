r"""Explicit Runge–Kutta steps written out stage by stage, for small and batched ODEs.

Diffrax's Runge–Kutta solvers run their stages in an inner ``while`` loop that reads the Butcher
tableau and a buffer of stages at a dynamic index: general (it handles implicit and multi-tableau
methods too), but for the 72-number state of an optomechanical pair a Dopri8 step costs 9.7 µs,
and no less per trajectory under ``vmap`` (9.8 µs in a batch of 256): overhead, not
arithmetic, sets the cost. :class:`Unrolled` takes the tableau of a Diffrax explicit method and
traces its stages as straight-line code, each stage one fused loop over the state (and the batch,
under ``vmap``):

$$k_i = h\,f\Big(t_0 + c_i h,\; y_0 + \sum_{j<i} a_{ij} k_j\Big),\qquad
  y_1 = y_0 + \sum_i b_i k_i,\qquad e = \sum_i (b_i - \hat b_i)\, k_i,$$

with the method's own first-same-as-last reuse, error estimate and dense output, so it takes the
same steps as the wrapped solver and agrees with it to rounding (tested). Measured on a 2-core CPU
(``benchmarks/bench_batched_step.py``, t = 200): 3.7 µs per trajectory and step in a batch of
256, against 9.8 µs with Diffrax's loop; in sweeps of Fig. 2(a) points to t = 2000
(``benchmarks/bench_sweep.py``) 3.2 against 8.0 µs. A single trajectory, however, runs 2×
slower unrolled (20.3 vs 9.7 µs per step): single solves keep Diffrax's loop (the default of
:class:`qsync_jax.SolverConfig`), batches should use ``Unrolled``.
"""

import diffrax as dfx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp


def _combine(y0, coefficients, ks):
    """y0 + Σ c_j k_j over the nonzero coefficients (Python floats: no tableau arrays traced)."""
    terms = [float(c) * k for c, k in zip(coefficients, ks) if c != 0]
    return y0 if not terms else y0 + sum(terms[1:], terms[0])


class Unrolled(dfx.AbstractAdaptiveSolver):
    """A Diffrax explicit Runge–Kutta method with its stages unrolled (module docstring).

    **Argument:** ``solver``, an explicit Runge–Kutta solver of Diffrax with one Butcher tableau
    (default ``diffrax.Dopri8()``; also e.g. ``diffrax.Tsit5()``, ``diffrax.Dopri5()``). Use it
    for batches of trajectories (``vmap``, :func:`qsync_jax.sweep`): one trajectory alone runs
    faster with Diffrax's own loop. The result is a
    Diffrax solver: use it wherever ``diffeqsolve`` takes one (step-size controllers, ``SaveAt``
    with dense output, events, every adjoint). States must be single arrays (as in
    :func:`qsync_jax.evolve`, which integrates one flat vector).
    """

    solver: dfx.AbstractERK
    term_structure = dfx.AbstractTerm

    def __init__(self, solver: dfx.AbstractERK = dfx.Dopri8()):
        tableau = getattr(type(solver), "tableau", None)
        if not isinstance(solver, dfx.AbstractERK) or not isinstance(
            tableau, dfx.ButcherTableau
        ):
            raise ValueError(
                "Unrolled takes an explicit Runge–Kutta solver of Diffrax with one Butcher "
                f"tableau (e.g. diffrax.Dopri8()); got {solver!r}."
            )
        self.solver = solver

    @property
    def interpolation_cls(self):
        return self.solver.interpolation_cls

    @property
    def _tableau(self) -> dfx.ButcherTableau:
        return type(self.solver).tableau

    def order(self, terms):
        return self.solver.order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def init(self, terms, t0, t1, y0, args):
        """The first stage's vector field f(t0, y0) when the method reuses its last stage."""
        return terms.vf(t0, y0, args) if self._tableau.fsal else None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        tableau = self._tableau
        control = terms.contr(t0, t1)
        h = t1 - t0
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
        fs = [f0]
        ks = [terms.prod(f0, control)]
        for c, row in zip(tableau.c, tableau.a_lower):
            y_stage = jax.lax.optimization_barrier(_combine(y0, row, ks))
            fs.append(terms.vf(t0 + float(c) * h, y_stage, args))
            ks.append(terms.prod(fs[-1], control))
        y1 = _combine(y0, tableau.b_sol, ks)
        y_error = _combine(jnp.zeros_like(y0), tableau.b_error, ks)
        dense_info = dict(y0=y0, y1=y1, k=jnp.stack(ks))
        state = fs[-1] if tableau.fsal else None
        return y1, y_error, dense_info, state, dfx.RESULTS.successful
