r"""Gradient-based design of model parameters with Optax.

:func:`optimize` minimizes (or, with ``maximize=True``, maximizes) a scalar ``objective(model)``
over named parameters of a model — e.g. ``("mu", "E")`` of an optomechanical pair or
``("xi", "g")`` of the correlated-bath oscillators — by gradient steps of an Optax optimizer.

**Constraints by reparametrization.** The optimizer never sees a physical value x directly, but
an unconstrained variable z with x = T(z), so every step is feasible and no gradient is lost to
clipping. With bounds (l, u) and scale s (below):

| bounds            | x = T(z)                              |
|-------------------|---------------------------------------|
| (−∞, ∞)           | s·z                                   |
| (l, ∞)            | l + s·softplus(z)                     |
| (−∞, u)           | u − s·softplus(z)                     |
| (l, u)            | (l + u)/2 + (u − l)/2 · tanh(z)       |

Bounds come from ``bounds={"E": (10.0, 80.0)}``, else from the model's declared parameter
bounds (:func:`qsync_jax.parameters`: e.g. rates, occupations and mechanical frequencies are
positive — softplus — and ``xi`` lies in (−1, 1) — tanh); a parameter declared without bounds,
or not declared, is unconstrained (``bounds={"gamma": None}`` lifts a declared bound). The
scale s is the distance of the starting value from the finite bound (its magnitude when
unbounded; 1 when that is zero), so one learning rate suits parameters of very different sizes
(μ ~ 0.02 and E ~ 50): a step of 0.01 in z changes x by the order of 1 %.

**Gradients.** ``gradient="reverse"`` uses ``jax.value_and_grad`` (one backward pass whatever the
number of parameters; through a Diffrax solve this needs the default
``SolverConfig(adjoint=diffrax.RecursiveCheckpointAdjoint())``). ``gradient="forward"`` uses
``jax.jacfwd`` (one tangent per designed scalar); through a solve this needs
``SolverConfig(adjoint=diffrax.ForwardMode())`` in the objective. For a few parameters and long
solves forward mode is the cheaper one (``benchmarks/bench_gradients.py`` measures both
against the value at the Fig. 2(a) pair of Mari et al.; the README quotes its results);
reverse mode wins beyond a handful of parameters. The reverse pass's memory is set by the number of
checkpoints, not by the length of the run. Steady-state objectives
(:func:`qsync_jax.steady_state`) work with both.
"""

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, PyTree
from tqdm import tqdm

from ._models._base import AbstractModel, parameters
from ._results import AbstractResult
from ._status import Status


def _softplus_inverse(y):
    """z with softplus(z) = y > 0, stable for small and large y."""
    return y + jnp.log(-jnp.expm1(-y))


class _Design(eqx.Module):
    """How one designed parameter maps between unconstrained z and the model's leaf.

    ``mask`` is None when the whole leaf is designed entry by entry ("each"); otherwise one
    scalar is written into the entries where ``mask`` is True ("shared"). The scale s of the
    transform belongs to the starting point (one per element of a batch of starts).
    """

    name: str = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    lower: float = eqx.field(static=True)
    upper: float = eqx.field(static=True)
    mask: Bool[Array, "..."] | None

    def scale(self, x) -> np.ndarray:
        """Scale s for starting values ``x`` (leading batch axes allowed; one s per start)."""
        lo, hi = self.lower, self.upper
        batch_ndim = np.ndim(x) - len(self.shape)
        if math.isfinite(lo) and math.isfinite(hi):
            return np.ones(np.shape(x)[:batch_ndim])
        ref = lo if math.isfinite(lo) else hi if math.isfinite(hi) else 0.0
        axes = tuple(range(batch_ndim, np.ndim(x)))
        s = np.max(np.abs(np.asarray(x, dtype=float) - ref), axis=axes, initial=0.0)
        return np.where(s > 0, s, 1.0)

    def physical(self, z, s):
        lo, hi = self.lower, self.upper
        if math.isfinite(lo) and math.isfinite(hi):
            return 0.5 * (lo + hi) + 0.5 * (hi - lo) * jnp.tanh(z)
        if math.isfinite(lo):
            return lo + s * jax.nn.softplus(z)
        if math.isfinite(hi):
            return hi - s * jax.nn.softplus(z)
        return s * z

    def unconstrained(self, x, s):
        lo, hi = self.lower, self.upper
        if math.isfinite(lo) and math.isfinite(hi):
            return jnp.arctanh((x - 0.5 * (lo + hi)) / (0.5 * (hi - lo)))
        if math.isfinite(lo):
            return _softplus_inverse((x - lo) / s)
        if math.isfinite(hi):
            return _softplus_inverse((hi - x) / s)
        return x / s

    def leaf(self, x, old):
        """The model's new leaf for designed value ``x``."""
        return x if self.mask is None else jnp.where(self.mask, x, old)


def _write(model: AbstractModel, designs: tuple[_Design, ...], xs: Mapping[str, Array]):
    """``model`` with the designed values ``xs`` (physical, by name) written into its leaves."""
    names = tuple(d.name for d in designs)
    leaves = tuple(d.leaf(xs[d.name], getattr(model, d.name)) for d in designs)
    return eqx.tree_at(lambda m: tuple(getattr(m, n) for n in names), model, leaves)


def _physical(designs, z, scale):
    return {d.name: d.physical(z[d.name], scale[d.name]) for d in designs}


class OptimizeHistory(AbstractResult):
    """What :func:`optimize` did, step by step (entry k: before the k-th update).

    A result like the others (:class:`qsync_jax.AbstractResult`: ``status``, ``num_steps``,
    ``outputs()``). The arrays are NumPy arrays; with ``inits`` (batched starting points) each
    carries a leading batch axis B.

    - ``objective``: (…, steps + 1) objective at each step, in the user's sign.
    - ``params``: name → (…, steps + 1, *shape) designed (physical) values at each step.
    - ``grad_norm``: (…, steps + 1) Euclidean norm of the gradient with respect to the
      unconstrained variables z (what the optimizer sees; → 0 at an optimum).
    - ``num_steps``: (…,) index k of the returned model in the history (= ``steps`` unless the
      run stopped early).
    - ``stopped``: (…,) True where a non-finite objective or gradient stopped the run; the entry
      ``num_steps + 1`` then holds the offending evaluation and later entries are NaN.
    - ``status``: (…,) :attr:`Status.success`, or :attr:`Status.diverged` where ``stopped``.
    - ``maximize``: the direction of the optimization.
    """

    objective: np.ndarray
    params: dict[str, np.ndarray]
    grad_norm: np.ndarray
    num_steps: np.ndarray
    stopped: np.ndarray
    status: Status
    maximize: bool = eqx.field(static=True)

    @property
    def final_objective(self) -> np.ndarray:
        """Objective of the returned model(s)."""
        return np.take_along_axis(self.objective, self.num_steps[..., None], axis=-1)[..., 0]

    def best(self) -> int:
        """Batch index of the starting point whose returned model has the best objective."""
        final = np.asarray(self.final_objective)
        if final.ndim == 0:
            raise ValueError("best() needs a batched history (optimize(..., inits=...)).")
        return int(np.argmax(final) if self.maximize else np.argmin(final))

    def outputs(self) -> PyTree:
        return {"objective": self.objective, "params": self.params, "grad_norm": self.grad_norm}

    def save_times(self) -> None:
        return None


def _status(stopped: np.ndarray) -> Status:
    """Status.diverged where ``stopped``, Status.success elsewhere (any shape)."""
    def one(s):
        return Status.where(s, Status.diverged, Status.success)

    flat = jax.vmap(one)(jnp.asarray(stopped).reshape(-1))
    return jax.tree_util.tree_map(lambda v: np.asarray(v).reshape(np.shape(stopped)), flat)


def _optax_promotion():
    """Optax mixes Python floats with int32 step counts (e.g. ``b1 ** count`` in Adam), which
    strict dtype promotion rejects: its calls run under standard promotion, scoped to them."""
    return jax.numpy_dtype_promotion("standard")


class _Carry(eqx.Module):
    z: dict[str, Array]
    scale: dict[str, Array]
    opt_state: PyTree
    stopped: Bool[Array, ""]


def _value_and_grad(objective, model, designs, z, scale, maximize, gradient):
    def loss(z):
        value = objective(_write(model, designs, _physical(designs, z, scale)))
        if jnp.shape(value) != ():
            raise ValueError(
                f"objective(model) must return a scalar; got shape {jnp.shape(value)}."
            )
        value = jnp.asarray(value, dtype=jnp.result_type(float))
        return -value if maximize else value

    if gradient == "reverse":
        return jax.value_and_grad(loss)(z)
    grad, value = jax.jacfwd(lambda z: (lambda v: (v, v))(loss(z)), has_aux=True)(z)
    return value, grad


def _iteration(carry: _Carry, objective, model, designs, optimizer, maximize, gradient):
    """Evaluate objective and gradient at ``carry.z``; take a step if both are finite."""

    def skip(z):
        nan = jnp.asarray(jnp.nan, dtype=jnp.result_type(float))
        return nan, jax.tree_util.tree_map(lambda x: jnp.full_like(x, jnp.nan), z)

    def evaluate(z):
        return _value_and_grad(objective, model, designs, z, carry.scale, maximize, gradient)

    loss, grad = jax.lax.cond(carry.stopped, skip, evaluate, carry.z)
    grad_leaves = jax.tree_util.tree_leaves(grad)
    ok = ~carry.stopped & jnp.isfinite(loss)
    for g in grad_leaves:
        ok = ok & jnp.all(jnp.isfinite(g))
    with _optax_promotion():
        updates, opt_state = optimizer.update(grad, carry.opt_state, carry.z)
        z = optax.apply_updates(carry.z, updates)
    keep = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
        lambda a, b: jnp.where(ok, a, b), new, old
    )
    record = dict(
        objective=-loss if maximize else loss,
        params=_physical(designs, carry.z, carry.scale),
        grad_norm=jnp.sqrt(sum(jnp.sum(g**2) for g in grad_leaves)),
        ok=ok,
    )
    new = _Carry(
        z=keep(z, carry.z),
        scale=carry.scale,
        opt_state=keep(opt_state, carry.opt_state),
        stopped=~ok,
    )
    return new, record


def _batched_iteration(carry, objective, model, designs, optimizer, maximize, gradient, batched):
    fn = lambda c: _iteration(c, objective, model, designs, optimizer, maximize, gradient)  # noqa: E731
    return jax.vmap(fn)(carry) if batched else fn(carry)


@eqx.filter_jit
def _step(carry, objective, model, designs, optimizer, maximize, gradient, batched):
    return _batched_iteration(
        carry, objective, model, designs, optimizer, maximize, gradient, batched
    )


@eqx.filter_jit
def _scan(carry, objective, model, designs, optimizer, maximize, gradient, batched, length):
    def body(c, _):
        return _batched_iteration(c, objective, model, designs, optimizer, maximize, gradient,
                                  batched)

    return jax.lax.scan(body, carry, length=length)


def _designs(model, params, bounds) -> tuple[_Design, ...]:
    if isinstance(params, str):
        params = (params,)
    if isinstance(params, Mapping):
        modes = dict(params)
    else:
        modes = {name: "shared" for name in params}
    if not modes:
        raise ValueError("params must name at least one model parameter; got none.")
    fields = {f.name for f in dataclasses.fields(model)}
    leaves = {
        n for n in fields if eqx.is_inexact_array(getattr(model, n, None))
        and not jnp.iscomplexobj(getattr(model, n))
    }
    bounds = {} if bounds is None else dict(bounds)
    for name in bounds:
        if name not in modes:
            raise ValueError(f"bounds names {name!r}, which is not in params {list(modes)}.")
    designs = []
    for name, mode in modes.items():
        if name not in fields:
            raise ValueError(
                f"params: {type(model).__name__} has no parameter {name!r}; its floating-point "
                f"parameters are {sorted(leaves)}."
            )
        if name not in leaves:
            raise ValueError(
                f"params: {name!r} of {type(model).__name__} is not a floating-point array leaf "
                f"(got {type(getattr(model, name)).__name__}); only those can be designed. "
                f"Designable: {sorted(leaves)}."
            )
        if mode not in ("shared", "each"):
            raise ValueError(f"params[{name!r}] must be 'shared' or 'each'; got {mode!r}.")
        leaf = np.asarray(getattr(model, name))
        mask = None
        if mode == "shared" and leaf.ndim > 0:
            nonzero = leaf != 0
            if not nonzero.any():
                raise ValueError(
                    f"params[{name!r}] = 'shared' writes one value into the non-zero entries of "
                    f"{name} (shape {leaf.shape}), but all are zero; start from non-zero values "
                    f"or use params={{{name!r}: 'each'}}."
                )
            values = np.unique(leaf[nonzero])
            if values.size != 1:
                raise ValueError(
                    f"params[{name!r}] = 'shared' writes one value into the non-zero entries of "
                    f"{name} (shape {leaf.shape}), which must then all be equal; got "
                    f"{leaf.tolist()}. Use params={{{name!r}: 'each'}} to design every entry."
                )
            mask = jnp.asarray(nonzero)
        declared = parameters(model).get(name)
        default = None if declared is None else (declared.lower, declared.upper)
        pair = bounds.get(name, default) or (-math.inf, math.inf)
        if np.shape(pair) != (2,):
            raise ValueError(f"bounds[{name!r}] must be (lower, upper) or None; got {pair!r}.")
        lo, hi = (float(v) for v in pair)
        if not lo < hi or math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"bounds[{name!r}] must have lower < upper; got ({lo}, {hi}).")
        shape = leaf.shape if mask is None else ()
        designs.append(_Design(name=name, shape=shape, lower=lo, upper=hi, mask=mask))
    return tuple(designs)


def _starting_values(model, designs, inits) -> tuple[dict[str, np.ndarray], int | None]:
    """Physical starting values by name, with a leading batch axis B when ``inits`` is given."""
    start = {}
    for d in designs:
        leaf = np.asarray(getattr(model, d.name))
        start[d.name] = leaf if d.mask is None else leaf[np.asarray(d.mask)][0]
    if inits is None:
        return start, None
    names = {d.name for d in designs}
    unknown = set(inits) - names
    if unknown:
        raise ValueError(f"inits names {sorted(unknown)}, which are not in params {sorted(names)}.")
    sizes = {}
    for name, value in inits.items():
        value = np.asarray(value, dtype=float)
        shape = np.shape(start[name])
        if value.ndim != len(shape) + 1 or value.shape[1:] != shape:
            raise ValueError(
                f"inits[{name!r}] must have shape (B,) + {shape} (a batch of starting values); "
                f"got {value.shape}."
            )
        sizes[name] = value.shape[0]
        start[name] = value
    if len(set(sizes.values())) != 1 or 0 in sizes.values():
        raise ValueError(f"inits must share one non-zero batch size B; got sizes {sizes}.")
    batch = next(iter(sizes.values()))
    for name in names - set(inits):
        start[name] = np.broadcast_to(start[name], (batch,) + np.shape(start[name]))
    return start, batch


def _check_inside(designs, start):
    for d in designs:
        x = np.asarray(start[d.name])
        if not np.all(np.isfinite(x)):
            raise ValueError(f"the starting value of {d.name!r} is not finite: {x.tolist()}.")
        if np.any(x <= d.lower) or np.any(x >= d.upper):
            raise ValueError(
                f"the starting value of {d.name!r} ({x.tolist()}) must lie strictly inside its "
                f"bounds ({d.lower}, {d.upper}); pass other bounds={{{d.name!r}: (lo, hi)}} or "
                f"another start."
            )


def _describe(params: Mapping[str, np.ndarray], index) -> str:
    def fmt(x):
        return np.array2string(np.asarray(x), precision=6, separator=", ")

    return ", ".join(f"{k}={fmt(np.asarray(v)[index])}" for k, v in params.items())


def optimize(
    objective: Callable[[AbstractModel], Float[Array, ""]],
    model: AbstractModel,
    params: Sequence[str] | Mapping[str, Literal["shared", "each"]],
    *,
    steps: int,
    optimizer: optax.GradientTransformation = optax.adam(0.05),
    bounds: Mapping[str, tuple[float, float] | None] | None = None,
    maximize: bool = False,
    gradient: Literal["reverse", "forward"] = "reverse",
    inits: Mapping[str, Array] | None = None,
    progress: bool = True,
) -> tuple[AbstractModel, OptimizeHistory]:
    r"""Design the parameters ``params`` of ``model`` to minimize (or maximize) ``objective``.

    **Main arguments:**

    - ``objective``: ``objective(model) -> scalar``, differentiable (e.g. a time average from
      :func:`qsync_jax.time_average` or a measure of :func:`qsync_jax.steady_state`). Pass a
      module-level function or ``functools.partial``: a new lambda per call recompiles.
    - ``model``: the starting model; every parameter not designed stays as it is.
    - ``params``: the parameters (field names) to design. A sequence of names designs one
      *shared* scalar per name: it is written into every non-zero entry of the leaf (one drive
      E for all sites, one coupling μ for every edge of the coupling graph; zeros stay zero,
      so a symmetric coupling matrix stays symmetric), and those entries must start equal. A
      mapping ``{"E": "each"}`` designs every entry of a leaf separately.
    - ``steps``: number of optimizer updates; the history has ``steps + 1`` entries.

    **Other arguments:**

    - ``optimizer``: an Optax ``GradientTransformation`` acting on the unconstrained
      variables (module docstring); default ``optax.adam(0.05)``, steps of ~5 %.
    - ``bounds``: ``{name: (lower, upper)}`` (±``inf`` allowed; ``None`` = unconstrained)
      overriding the default table of the module docstring. Starting values must lie strictly
      inside.
    - ``maximize``: maximize instead of minimize (the history keeps the objective's own sign).
    - ``gradient``: ``"reverse"`` (default) or ``"forward"``; see the module docstring for the
      matching ``SolverConfig(adjoint=...)`` of solves inside ``objective`` and the costs.
    - ``inits``: ``{name: (B, *shape) array}`` of B starting values (names not given start from
      the model's value). The B optimizations run in parallel under ``vmap``, to escape local
      optima; the returned model and history carry a leading axis B
      (``history.best()`` picks the best start).
    - ``progress``: show a progress bar (a jitted step called from Python per update). With
      ``progress=False`` the whole loop is one jitted ``lax.scan``.

    **Returns** ``(model, history)``: the optimized model (the last one whose objective and
    gradient were finite) and an :class:`OptimizeHistory`.

    **Failures.** ``ValueError`` before any work for unknown parameter names, parameters that are
    not floating-point array leaves, bounds with lower ≥ upper or starting values outside them,
    and — after evaluating the start — a non-finite objective or gradient there. A later step with
    a non-finite objective or gradient (e.g. a solve that diverged: return NaN from the objective
    when ``TimeAverage.status`` is not success) stops that optimization with a
    ``RuntimeWarning`` naming the step and the parameters; the model of the previous step is
    returned and ``history.stopped`` is True.
    """
    if not callable(objective):
        raise TypeError(f"`objective` must be a function objective(model) -> scalar; got "
                        f"{objective!r}.")
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer; got {steps!r}.")
    if gradient not in ("reverse", "forward"):
        raise ValueError(f"gradient must be 'reverse' or 'forward'; got {gradient!r}.")
    designs = _designs(model, params, bounds)
    start, batch = _starting_values(model, designs, inits)
    _check_inside(designs, start)
    batched = batch is not None

    dtype = jnp.result_type(float)
    scale = {d.name: jnp.asarray(d.scale(start[d.name]), dtype=dtype) for d in designs}
    z0 = {
        d.name: d.unconstrained(jnp.asarray(start[d.name], dtype=dtype), scale[d.name])
        for d in designs
    }
    opt_init = jax.vmap(optimizer.init) if batched else optimizer.init
    with _optax_promotion():
        opt_state = opt_init(z0)
    stopped = jnp.zeros((batch,) if batched else (), dtype=bool)
    carry = _Carry(z=z0, scale=scale, opt_state=opt_state, stopped=stopped)
    static = (objective, model, designs, optimizer, bool(maximize), gradient, batched)

    if progress:
        records = []
        with tqdm(total=steps + 1, desc="optimize") as bar:
            for k in range(steps + 1):
                carry, record = _step(carry, *static)
                records.append(record)
                if k == 0:
                    _check_start(record, batched)
                bar.update()
                bar.set_postfix(objective=_best(record, maximize))
                if bool(jnp.all(carry.stopped)):
                    break
        records = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *records)
        records = _pad(records, steps + 1)
    else:
        carry, records = _scan(carry, *static, steps + 1)
        records = jax.tree_util.tree_map(np.asarray, records)
        _check_start(jax.tree_util.tree_map(lambda x: x[0], records), batched)

    history = _history(records, maximize, batched)
    _warn_stopped(history, records, batched)
    index = (np.arange(batch), history.num_steps) if batched else history.num_steps
    final = {name: jnp.asarray(v[index]) for name, v in history.params.items()}
    if batched:
        return eqx.filter_vmap(lambda xs: _write(model, designs, xs))(final), history
    return _write(model, designs, final), history


def _history(records, maximize, batched) -> OptimizeHistory:
    """Records (time-major) → history (batch-major); entries after a failed step are NaN."""
    length = records["ok"].shape[0]
    num_good = np.sum(np.cumprod(records["ok"], axis=0), axis=0)
    step = np.arange(length).reshape((length,) + (1,) * int(batched))
    valid = step <= num_good  # the evaluations done, including a failed one

    def clean(x):
        mask = valid.reshape(valid.shape + (1,) * (x.ndim - valid.ndim))
        return np.moveaxis(np.where(mask, x, np.nan), 0, int(batched))

    return OptimizeHistory(
        objective=clean(records["objective"]),
        params={k: clean(v) for k, v in records["params"].items()},
        grad_norm=clean(records["grad_norm"]),
        num_steps=num_good - 1,
        stopped=num_good < length,
        status=_status(num_good < length),
        maximize=bool(maximize),
    )


def _warn_stopped(history, records, batched):
    stopped = np.atleast_1d(np.asarray(history.stopped))
    num_steps = np.atleast_1d(np.asarray(history.num_steps))
    for b in np.flatnonzero(stopped):
        k = int(num_steps[b]) + 1
        index = (k, b) if batched else k
        where = f" for starting point {b}" if batched else ""
        value = np.asarray(records["objective"])[index]
        grad_norm = np.asarray(records["grad_norm"])[index]
        warnings.warn(
            f"optimize stopped at step {k}{where}: the objective ({value}) or its gradient "
            f"(norm {grad_norm}) is not finite at {_describe(records['params'], index)}. "
            f"Returning the model of step {k - 1}.",
            RuntimeWarning,
            stacklevel=3,
        )


def _best(record, maximize):
    values = np.asarray(record["objective"])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return float(values.max() if maximize else values.min())


def _check_start(record, batched):
    ok = np.atleast_1d(np.asarray(record["ok"]))
    if not ok.all():
        b = int(np.argmin(ok))
        where = f" (starting point {b})" if batched else ""
        index = b if batched else ()
        value = np.asarray(record["objective"])[index]
        raise ValueError(
            f"the objective ({value}) or its gradient is not finite at the start{where}, "
            f"{_describe(record['params'], index)}: nothing to optimize from there."
        )


def _pad(records, length):
    """Extend time-major records to ``length`` entries (NaN, or False for flags)."""

    def pad(x):
        fill = np.zeros((length - x.shape[0],) + x.shape[1:], dtype=x.dtype)
        if np.issubdtype(x.dtype, np.floating):
            fill[...] = np.nan
        return np.concatenate([x, fill])

    return jax.tree_util.tree_map(pad, records)
