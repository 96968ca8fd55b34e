r"""Checks that turn every failed solve into a status with NaN values, never a plausible number.

:func:`qsync_jax.evolve` and :func:`qsync_jax.time_average` run these checks after the solve, on
the saved states (or the window's end points), never at every step; all work batched, under
``jit`` and ``vmap``. Conventions of :mod:`qsync_jax._gaussian`.

- **Times** (traced ones too; concrete ones raise before any work): save times finite, strictly
  increasing and ≥ t₀; a window finite with t₀ ≤ t_a < t_b. Otherwise ``Status.invalid_times``.
- **Physicality**: a state is physical within the solver's accuracy when
  λ_min(C + iΩ/2) ≥ −``PHYSICAL_RTOL``·(1 + max|C|): the uncertainty relation may be violated by
  at most a relative 10⁻⁶ of the covariance scale (integration errors are ~``rtol`` relative to
  it). Otherwise ``Status.unphysical``. A ring's state is checked block by block: the Bloch
  transform is unitary, so C + iΩ/2 ⪰ 0 iff Ĝ(q) ± iΩ_site/2 ⪰ 0 for q = 0, …, N/2.
- **Regime of the linearization** (nonlinear models only; linear models are exact): the
  dynamics of the fluctuations is linearized around the mean field, which neglects terms of
  relative size |δa|/|⟨a⟩|. With N_fl = ½(tr C − n) = Σₖ⟨δaₖ†δaₖ⟩ the fluctuation quanta,
  N_mf = ½|⟨u⟩|² = Σₖ|⟨aₖ⟩|² the mean-field quanta and N_floor = max(N_bath, N_fl(t₀)) the
  noise the solve starts from or is fed — N_bath = Σₖ(n̄ₖ + 1), the bath noise (thermal plus
  vacuum), or the initial state's fluctuations if larger — the linearization holds while

  $$N_\mathrm{fl} \le \epsilon\,N_\mathrm{mf} + N_\mathrm{floor},\qquad
    \epsilon = \texttt{LINEARIZATION\_RATIO} = 0.1,$$

  i.e. the fluctuations beyond that floor stay below a tenth of the mean field in quanta (an
  rms phase spread ≲ 0.3 rad on a limit cycle). Otherwise ``Status.linearization_broken``: a
  chaotic mean field (positive Lyapunov exponent) makes C grow exponentially and trips this
  within a few Lyapunov times; phase diffusion on a limit cycle trips it only after very long runs.
- **Undefined measures**: a saved or averaged measure that is not finite on a finite state gives
  ``Status.undefined_measure`` (an integrand that is not finite is integrated as 0 and the time
  it spends so is integrated alongside, so the solve is never held up by it).

Solver settings (:class:`qsync_jax.SolverConfig`) are checked when constructed; in float32 mode
(``jax_enable_x64`` off) a tolerance below ``FLOAT32_MIN_TOL`` cannot be met and a warning says
so, once.

A trajectory keeps its saves before the first failed one; from it on every saved value is NaN.
A failed time average has NaN values and a NaN end state.
"""

import numbers
import warnings

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._gaussian import GaussianState, uncertainty_margin
from ._models._base import AbstractLinearModel
from ._status import Status, from_diffrax

PHYSICAL_RTOL = 1e-6
"""Allowed violation of C + iΩ/2 ⪰ 0, relative to 1 + max|C| (module docstring)."""

LINEARIZATION_RATIO = 0.1
"""ε of the linearization criterion N_fl ≤ ε N_mf + N_floor (module docstring)."""


# ------------------------------------------------------------------------------------------ times


def times_valid(ts, t0):
    """Whether save times ``ts`` (T,) are finite, strictly increasing and ≥ ``t0`` (traceable)."""
    return (
        jnp.all(jnp.isfinite(ts))
        & jnp.isfinite(t0)
        & jnp.all(jnp.diff(ts) > 0)
        & (ts[0] >= t0)
    )


def safe_times(ts, t0):
    """(ts, t0, valid): the times themselves where valid, else harmless ones (0, 1/T, …)."""
    valid = times_valid(ts, t0)
    dummy = jnp.arange(ts.shape[0], dtype=ts.dtype) / ts.shape[0]
    return jnp.where(valid, ts, dummy), jnp.where(valid, t0, 0.0), valid


def safe_window(window, t0):
    """(window, t0, valid) for a window (t_a, t_b): itself where valid, else (0, 1) from 0."""
    valid = times_valid(window, t0)
    return jnp.where(valid, window, jnp.asarray([0.0, 1.0], window.dtype)), \
        jnp.where(valid, t0, 0.0), valid


# ------------------------------------------------------------------------------------ state health


def _site_view(state):
    """A ``GaussianState`` and the matrices whose uncertainty margin decides physicality.

    Dense states: the state and its covariance. Ring states (Bloch blocks): one site (all are
    equal, so the linearization ratio is the ring's) and the blocks Ĝ(q) ± nothing: the margin
    of Ĝ(q) + iΩ/2 and of its conjugate Ĝ(−q) + iΩ/2 are both taken.
    """
    if isinstance(state, GaussianState):
        return state, [state.cov]
    blocks = jnp.moveaxis(state.bloch_blocks(), -1, 0)  # (Q, d, d) Hermitian
    return state.site(), [blocks, jnp.conj(blocks)]


def _bath_occupations(model, site: GaussianState):
    """Bath occupations of the modes of ``site`` (for a ring's one-site view: the first site's)."""
    return model.bath_occupations()[: site.cov.shape[-1] // 2]


def _quanta(site: GaussianState):
    """(N_fl, N_mf): fluctuation and mean-field quanta of a state (module docstring)."""
    n = site.cov.shape[-1] // 2
    return 0.5 * (jnp.trace(site.cov, axis1=-2, axis2=-1) - n), 0.5 * jnp.sum(site.mean**2, -1)


def noise_floor(model, state0) -> jax.Array:
    """N_floor = max(N_bath, N_fl(state0)): the fluctuation quanta the linearization tolerates
    whatever the mean field — the bath's own noise, or the initial state's if larger (a solve
    cannot be blamed for the fluctuations it starts from)."""
    site, _ = _site_view(jax.lax.stop_gradient(state0))
    n_bath = jnp.sum(_bath_occupations(model, site) + 1.0)
    return jnp.maximum(n_bath, _quanta(site)[0])


def health(model, state, floor) -> jax.Array:
    """(violation, ratio) of one state: −λ_min(C + iΩ/2)/(1 + max|C|) and
    N_fl / (ε N_mf + N_floor) (0 for linear models; ``floor`` from :func:`noise_floor`). NaN if
    the state is not finite."""
    state = jax.lax.stop_gradient(state)
    site, matrices = _site_view(state)
    violations = []
    for m in matrices:
        scale = 1.0 + jnp.max(jnp.abs(m), axis=(-2, -1))
        violations.append(jnp.max(-uncertainty_margin(m) / scale))
    violation = jnp.max(jnp.stack(violations))
    if isinstance(model, AbstractLinearModel):
        ratio = jnp.zeros_like(violation)
    else:
        n_fl, n_mf = _quanta(site)
        ratio = n_fl / (LINEARIZATION_RATIO * n_mf + floor)
    leaves = jax.tree_util.tree_leaves(state)
    finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in leaves]))
    return jnp.where(finite, jnp.stack([violation, ratio]), jnp.nan)


def _health_code(h):
    """Status code of (violation, ratio) values (any leading axes)."""
    violation, ratio = h[..., 0], h[..., 1]
    code = jnp.full(violation.shape, Status.success._value)
    code = jnp.where(violation > PHYSICAL_RTOL, Status.unphysical._value, code)
    code = jnp.where(ratio > 1.0, Status.linearization_broken._value, code)
    return jnp.where(jnp.isnan(violation) | jnp.isnan(ratio), Status.diverged._value, code)


def _from_code(code) -> Status:
    status = Status.success
    for item in Status._name_to_item.values():
        status = Status.where(code == item._value, item, status)
    return status


def _finite_per(tree, ndim: int):
    """Whether all entries of ``tree`` are finite, per index of its ``ndim`` leading axes."""
    finite = True
    for leaf in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array)):
        finite = finite & jnp.all(jnp.isfinite(leaf), axis=tuple(range(ndim, leaf.ndim)))
    return jnp.asarray(finite)


def nan_where(bad, tree):
    """``tree`` with its floating leaves NaN where ``bad`` (broadcast over leading axes)."""

    def fill(leaf):
        if not eqx.is_inexact_array(leaf):
            return leaf
        mask = jnp.reshape(bad, jnp.shape(bad) + (1,) * (leaf.ndim - jnp.ndim(bad)))
        return jnp.where(mask, jnp.nan, leaf)

    return jax.tree_util.tree_map(fill, tree)


# -------------------------------------------------------------------------------- per-solve status


def with_health(save, floor):
    """A Diffrax ``SaveAt`` function that also saves :func:`health` of the state."""
    return lambda t, y, model: (save(t, y, model), health(model, y, floor))


def trajectory_status(result, sol_ts, saved, valid_times):
    """(status, outputs) of a trajectory solved with :func:`with_health` saves.

    Per save: unreached (the solver stopped) → the solver's status; a non-finite state →
    diverged; then linearization_broken, unphysical, and undefined_measure for non-finite
    outputs of a finite state. The first failed save sets the status; it and every later save
    become NaN.
    """
    outputs, h = saved
    code = jnp.where(jnp.isfinite(sol_ts), _health_code(h), from_diffrax(result)._value)
    undefined = (code == Status.success._value) & ~_finite_per(outputs, 1)
    code = jnp.where(undefined, Status.undefined_measure._value, code)
    code = jnp.where(valid_times, code, Status.invalid_times._value)
    failed = code != Status.success._value
    first = jnp.argmax(failed)
    status = _from_code(jnp.where(jnp.any(failed), code[first], Status.success._value))
    after = jnp.cumsum(failed) > 0
    return status, nan_where(after, outputs)


def guard_integrand(fn):
    """``fn`` for the running integral: non-finite values count as 0, and the time they last is
    integrated alongside (returns (values, indicator))."""

    def guarded(t, state):
        values = fn(t, state)
        finite = _finite_per(values, 0)
        return jax.tree_util.tree_map(lambda v: jnp.where(finite, v, 0.0), values), \
            jnp.where(finite, 0.0, 1.0)

    return guarded


def average_status(model, results, state_a, state_b, value, undefined_time, valid_window, floor):
    """(status, value, state_b) of a time average.

    Order: invalid window, the transient's then the window's solver status, the health of the
    state at t_a then at t_b, an integrand that was not finite for part of the window (or a
    non-finite average). Where failed, value and state are NaN.
    """
    code = jnp.asarray(Status.success._value)
    for h in reversed([health(model, state_a, floor), health(model, state_b, floor)]):
        code = jnp.where(_health_code(h) != Status.success._value, _health_code(h), code)
    undefined = (undefined_time > 0) | ~_finite_per(value, 0)
    code = jnp.where((code == Status.success._value) & undefined,
                     Status.undefined_measure._value, code)
    for result in reversed(results):
        solver = from_diffrax(result)._value
        code = jnp.where(solver != Status.success._value, solver, code)
    code = jnp.where(valid_window, code, Status.invalid_times._value)
    status = _from_code(code)
    bad = status != Status.success
    return status, nan_where(bad, value), nan_where(bad, state_b)


# ----------------------------------------------------------------------------- initial state check


@jax.jit
def _scale_and_margin(cov):
    """max |C_ij| and the smallest λ_min(C + iΩ/2) (one compiled call: a check that costs µs)."""
    return jnp.max(jnp.abs(cov)), jnp.min(uncertainty_margin(cov))


def check_physical(state, name: str = "state0") -> None:
    """``ValueError`` if a concrete ``state`` violates C + iΩ/2 ⪰ 0 beyond ``PHYSICAL_RTOL``."""
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(state)):
        return
    with jax.ensure_compile_time_eval():  # concrete values, also inside an outer `jit`
        _, matrices = _site_view(state)
        margins = [_scale_and_margin(m) for m in matrices]
    for max_abs, margin in margins:
        scale = 1.0 + float(max_abs)
        margin = float(margin)
        if margin < -PHYSICAL_RTOL * scale:
            raise ValueError(
                f"{name} is not a physical state: C + iΩ/2 has the eigenvalue {margin:.3g} < 0 "
                f"(the uncertainty relation is violated; a physical covariance has "
                f"symplectic eigenvalues ≥ ½, e.g. the vacuum C = ½·I)."
            )


# --------------------------------------------------------------------------------- solver settings

FLOAT32_MIN_TOL = 1e-6
"""Smallest ``rtol``/``atol`` float32 arithmetic can meet (≈ 10 ε₃₂; ε₃₂ = 1.2·10⁻⁷)."""


def _is_traced(x) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def check_arguments(model, config, model_types, **functions) -> None:
    """``TypeError`` naming the argument unless ``model`` is one of ``model_types``, ``config`` a
    ``SolverConfig`` and each of ``functions`` callable (``save`` may be None)."""
    if not isinstance(model, model_types):
        raise TypeError(f"`model` must be a qsync_jax model; got {type(model).__name__}.")
    if type(config).__name__ != "SolverConfig" or not hasattr(config, "solver"):
        raise TypeError(f"`config` must be a qsync_jax.SolverConfig; got {config!r}.")
    for name, fn in functions.items():
        if not (callable(fn) or (name == "save" and fn is None)):
            raise TypeError(f"`{name}` must be a function of (t, state); got {fn!r}.")


def check_solver_config(config) -> None:
    """``ValueError``/``TypeError`` naming the field of a bad :class:`qsync_jax.SolverConfig`."""
    if not isinstance(config.solver, dfx.AbstractSolver):
        raise TypeError(f"`solver` must be a Diffrax solver; got {config.solver!r}.")
    if not isinstance(config.adjoint, dfx.AbstractAdjoint):
        raise TypeError(f"`adjoint` must be a Diffrax adjoint; got {config.adjoint!r}.")
    for name in ("rtol", "atol", "dt0"):
        value = getattr(config, name)
        if (name == "dt0" and value is None) or _is_traced(value):
            continue
        real = np.shape(value) == () and np.asarray(value).dtype.kind in "iuf"
        if isinstance(value, bool) or not real:
            raise TypeError(f"`{name}` must be a real scalar; got {value!r}.")
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` must be positive and finite; got {value!r}.")
    steps = config.max_steps
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"`max_steps` must be a positive integer; got {steps!r}.")


_warned_precision = False


def warn_precision(config) -> None:
    """Warn once when float32 arithmetic cannot meet ``config``'s tolerances."""
    global _warned_precision
    if _warned_precision or jnp.result_type(float) != jnp.float32:
        return
    tols = [config.rtol, config.atol]
    if not any(_is_traced(tol) for tol in tols) and min(tols) < FLOAT32_MIN_TOL:
        _warned_precision = True
        warnings.warn(
            f"JAX runs in float32 (jax_enable_x64 is off), which cannot meet rtol = "
            f"{config.rtol:g}, atol = {config.atol:g} (the smallest it can meet is about "
            f"{FLOAT32_MIN_TOL:g}): results may be inaccurate or overflow. Call "
            f'jax.config.update("jax_enable_x64", True) at startup, or loosen the tolerances.',
            UserWarning,
            stacklevel=3,
        )
