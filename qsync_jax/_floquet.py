r"""Locked limit cycles: periodic orbits, Floquet multipliers, phase diffusion, window averages.

For an autonomous model whose mean field settles on a periodic orbit p(t + T) = p(t) (a locked
limit cycle), the linearized fluctuations obey a periodic linear equation (conventions of
:mod:`qsync_jax._gaussian`)

$$\dot C = A(t)\,C + C\,A(t)^\top + D(t),\qquad A(t) = \partial f/\partial u\,|_{p(t)}.$$

With Φ(s) the propagator of A from the orbit point p(0) (Φ̇ = AΦ, Φ(0) = 1) and
Q(s) = ∫₀ˢ Φ(s)Φ(r)⁻¹ D(r) Φ(r)⁻ᵀΦ(s)ᵀ dr the covariance built from C = 0, every later covariance
follows exactly by linear algebra:

$$C(t_k + s) = \Phi(s)\,C_k\,\Phi(s)^\top + Q(s),\qquad C_{k+1} = M C_k M^\top + Q(T),$$

where t_k = t_s + kT and M = Φ(T) is the **monodromy** matrix. Its eigenvalues are the
**Floquet multipliers**: one equals 1 (the neutral, phase direction, eigenvector f(p(0))); the
orbit is attracting when all others lie inside the unit circle.

**Phase diffusion.** The left eigenvector Z of M for the multiplier 1, normalized by
Z·f(p(0)) = 1, is the phase-response (adjoint Floquet) vector: a displacement δu shifts the
phase of the oscillation by Z·δu (in units of time). Since Mᵀ Z = Z, the variance of the phase
grows by exactly Zᵀ Q(T) Z per period — there is no restoring force along the orbit. In radians,
φ = 2πθ/T, Var φ = 2 D_φ t with

$$D_\varphi = \frac12\Big(\frac{2\pi}{T}\Big)^2\,\frac{Z^\top Q(T)\,Z}{T}
            = \frac12\Big(\frac{2\pi}{T}\Big)^2 \frac1T\int_0^T Z(s)^\top D(s)\, Z(s)\,ds,$$

the half-width of the oscillator's Lorentzian line (Z(s) = Φ(s)⁻ᵀZ). Along the orbit the
covariance therefore gains (t/T)·ZᵀQZ · f fᵀ: a quantity that sees the tangent f (e.g. q₋, p₋
of two unequal orbits) grows linearly in time, and measures such as S_c decay like 1/t.

**Settling.** A trajectory still δ off the orbit where the propagation starts, at t_s, is at
the orbit's phase τ = Z·δ there (its asymptotic phase: it passes p(0) at t_s − τ), and the
decaying rest of δ changes A and D for a few dozen periods; both leave errors in the phase
variance that are linear in δ and never decay. Window averages add both to first order
(:func:`_settled_covariance`).

**Shooting.** After a transient the orbit point is found by Newton's method on
G(u, T) = (φ_T(u) − u, f(u_s)·(u − u_s)) (the second component, a phase condition, fixes the
point on the hyperplane through the trajectory's state u_s orthogonal to the flow), with the
monodromy from the variational equation integrated alongside, starting from the period guessed
from the transient's last return to that hyperplane. Derivatives with respect to model
parameters follow from the implicit function theorem at the fixed point,
d(u*, T*)/dθ = −(∂G/∂(u, T))⁻¹ ∂G/∂θ, in forward and reverse mode.
"""

import diffrax as dfx
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, Int, PyTree

from ._gaussian import GaussianState
from ._integrate import (
    SolverConfig,
    _check_state0,
    _check_times,
    _save_state,
    _solve,
)
from ._matmul import matmul as _matmul
from ._models._base import AbstractGaussianModel, AbstractModel
from ._results import AbstractResult, TimeAverage, _is_concrete
from ._status import Status, from_diffrax, mark_nonfinite

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)


class PeriodicOrbit(AbstractResult):
    r"""Result of :func:`periodic_orbit` (module docstring for the mathematics).

    - ``point``: (2n,) the orbit point p(0), on the hyperplane through the trajectory's state at
      ``t_anchor`` orthogonal to the flow; ``t_anchor``: that time.
    - ``period``: T.
    - ``multipliers``: (2n,) complex Floquet multipliers (eigenvalues of ``monodromy``), the
      neutral one first, the others by decreasing modulus.
    - ``monodromy``: (2n, 2n) M = Φ(T); ``noise``: (2n, 2n) Q(T), so that C_{k+1} = M C_k Mᵀ + Q.
    - ``phase_response``: (2n,) Z (left eigenvector of M for 1, Z·f(p(0)) = 1), units of time.
    - ``phase_offset``: τ = Z·(u − p(0)) for the trajectory's mean u at ``t_anchor``: to first
      order the trajectory is at the orbit's phase τ then, i.e. it passes ``point`` at
      ``t_anchor − τ`` (its asymptotic phase, in units of time).
    - ``phase_diffusion``: D_φ, Var φ = 2 D_φ t for the phase in radians.
    - ``node_times``, ``node_points``, ``node_propagators``, ``node_noise``: s_q, p(s_q), Φ(s_q),
      Q(s_q) at the composite Gauss–Legendre nodes of one period (``node_weights``: weights,
      summing to T), the data of exact window averages.
    - ``state``: the trajectory's ``GaussianState`` at ``t_anchor`` (after the transient).
    - ``status``: success, or :attr:`Status.no_periodic_orbit` /
      :attr:`Status.unstable_periodic_orbit` (then every output is NaN), or the transient's
      failure. ``num_steps``: solver steps of the transient, the shooting and the propagators.
    """

    point: Float[Array, " 2n"]
    period: Float[Array, ""]
    t_anchor: Float[Array, ""]
    multipliers: Complex[Array, " 2n"]
    monodromy: Float[Array, "2n 2n"]
    noise: Float[Array, "2n 2n"]
    phase_response: Float[Array, " 2n"]
    phase_offset: Float[Array, ""]
    phase_diffusion: Float[Array, ""]
    node_times: Float[Array, " Q"]
    node_weights: Float[Array, " Q"]
    node_points: Float[Array, "Q 2n"]
    node_propagators: Float[Array, "Q 2n 2n"]
    node_noise: Float[Array, "Q 2n 2n"]
    state: GaussianState
    status: Status
    num_steps: Int[Array, ""]

    def outputs(self) -> PyTree:
        return {
            "period": self.period,
            "multipliers": self.multipliers,
            "phase_diffusion": self.phase_diffusion,
            "point": self.point,
        }

    def save_times(self) -> None:
        return None


# ----------------------------------------------------------------------------- vector fields


def _variational_field(t, y, model):
    """(u, Φ): u̇ = f(u), Φ̇ = A(u)Φ."""
    x, phi = y
    return model.mean_field(t, x), _matmul(model.drift(t, x), phi)


def _propagator_field(t, y, model):
    """(u, Φ, Q): u̇ = f(u), Φ̇ = A(u)Φ, Q̇ = AQ + QAᵀ + D(u)."""
    x, phi, q = y
    A = model.drift(t, x)
    AQ = _matmul(A, q)
    return model.mean_field(t, x), _matmul(A, phi), AQ + AQ.T + model.diffusion(t, x)


def _flow(model, x, T, config):
    """φ_T(x) and its Jacobian, the monodromy (u, Φ) integrated over [0, T]."""
    eye = jnp.eye(x.shape[0], dtype=x.dtype)
    sol = _solve(model, (x, eye), jnp.zeros_like(T), T, config, _save_state,
                 vector_field=_variational_field)
    x_T, M = jax.tree_util.tree_map(lambda a: a[-1], sol.ys)
    return x_T, M, from_diffrax(sol.result), sol.stats["num_steps"]


# ----------------------------------------------------------------------------- shooting


def _bordered(M, f, f_ref):
    """Newton matrix of the shooting equations: [[M − 1, f], [f_refᵀ, 0]]."""
    n = M.shape[0]
    J = jnp.zeros((n + 1, n + 1), M.dtype)
    return J.at[:n, :n].set(M - jnp.eye(n, dtype=M.dtype)).at[:n, n].set(f).at[n, :n].set(f_ref)


def _step_size(delta, x, T):
    """Relative size of a Newton step (δu, δT) at (u, T): max(|δu|/(1 + |u|), |δT|/T)."""
    return jnp.maximum(jnp.linalg.norm(delta[:-1]) / (1.0 + jnp.linalg.norm(x)),
                       jnp.abs(delta[-1]) / T)


def _newton(model, x_ref, f_ref, T0, config, max_iter, tol):
    """Newton's iteration on the shooting equations."""

    def cond(carry):
        _, _, err, it, status, _ = carry
        return (err > tol) & (it < max_iter) & (status == Status.success) & ~jnp.isnan(err)

    def body(carry):
        x, T, _, it, _, steps = carry
        x_T, M, status, n = _flow(model, x, T, config)
        J = _bordered(M, model.mean_field(T, x_T), f_ref)
        delta = jnp.linalg.solve(J, -jnp.concatenate([x_T - x, jnp.dot(f_ref, x - x_ref)[None]]))
        return x + delta[:-1], T + delta[-1], _step_size(delta, x, T), it + 1, status, steps + n

    init = (x_ref, T0, jnp.asarray(jnp.inf, T0.dtype), jnp.asarray(0), Status.success,
            jnp.asarray(0))
    x, T, err, _, status, steps = jax.lax.while_loop(cond, body, init)
    converged = (err <= tol) & (status == Status.success) & (T > 0)
    return x, T, converged, steps


def _shoot(model, x_ref, f_ref, T0, config, max_iter, tol):
    """The fixed point z* = (u*, T*) of G(z; θ) = (φ_T(u) − u, f_ref·(u − u_ref)) = 0.

    Newton's iteration runs on constants (no derivative flows through it); the result is then
    z = z* − J⁻¹ G(z*; θ) with J = ∂G/∂z at z* held constant: equal to z* (G(z*) ≈ 0, so this
    is one more Newton step) and with derivative −J⁻¹ ∂G/∂θ, the implicit function theorem, in
    forward and reverse mode alike (θ: the model's parameters and the section u_ref, f_ref).
    G and J come from one solve of the variational equation at z*: J from the iteration's last
    step, at the point before z*, would be off by that step, and so would the derivative.
    """
    dynamic, static = eqx.partition((model, x_ref, f_ref), eqx.is_inexact_array)
    model_c, x_ref_c, f_ref_c = eqx.combine(jax.lax.stop_gradient(dynamic), static)
    x, T, converged, steps = _newton(model_c, x_ref_c, f_ref_c, T0, config, max_iter, tol)
    # G at the fixed point, differentiable in θ, and the Newton matrix there (constant).
    x_safe, T_safe = jnp.where(converged, x, x_ref_c), jnp.where(converged, T, 1.0)
    x_T, M, status, n = _flow(model, x_safe, T_safe, config)
    J = jax.lax.stop_gradient(_bordered(M, model.mean_field(T_safe, x_T), f_ref))
    G = jnp.concatenate([x_T - x_safe, jnp.dot(f_ref, x_safe - x_ref)[None]])
    delta = jnp.linalg.solve(J, G)
    # Converged means: the Newton step at the returned point, too, is below tol.
    converged = converged & (status == Status.success) & (
        _step_size(jax.lax.stop_gradient(delta), x_safe, T_safe) <= tol)
    return x - delta[:-1], T - delta[-1], J, converged, steps + n


def _phase_response(M, f):
    """Z with Mᵀ Z = Z and Z·f = 1: [[Mᵀ − 1, f], [fᵀ, 0]] (Z, c) = (0, 1) (then c = 0)."""
    rhs = jnp.zeros(M.shape[0] + 1, M.dtype).at[-1].set(1.0)
    return jnp.linalg.solve(_bordered(M.T, f, f), rhs)[:-1]


def _period_guess(ts, means, rates, x_s, f_s, period_max):
    """Guess of the period from the transient's samples: the time since its last upward
    crossing of the section g(u) = f_s·(u − u_s) = 0 before reaching u_s (the one at u_s
    excluded), located by cubic Hermite interpolation of g between samples (ġ = f_s·f(u) from
    the mean-field ``rates``: the guess is accurate to O(spacing⁴), not O(spacing²))."""
    g, dg = (means - x_s) @ f_s, rates @ f_s
    up = ((g[:-1] < 0) & (g[1:] >= 0)).at[-1].set(False)
    found = jnp.any(up)
    i = up.shape[0] - 1 - jnp.argmax(up[::-1])
    h = ts[i + 1] - ts[i]
    g0, g1, d0, d1 = g[i], g[i + 1], dg[i] * h, dg[i + 1] * h

    def hermite(s):  # g on [ts[i], ts[i+1]] at ts[i] + s h, and its s-derivative
        value = ((2 * s**3 - 3 * s**2 + 1) * g0 + (s**3 - 2 * s**2 + s) * d0
                 + (-2 * s**3 + 3 * s**2) * g1 + (s**3 - s**2) * d1)
        slope = ((6 * s**2 - 6 * s) * (g0 - g1) + (3 * s**2 - 4 * s + 1) * d0
                 + (3 * s**2 - 2 * s) * d1)
        return value, slope

    s = -g0 / (g1 - g0)  # the linear estimate, then Newton's method on the cubic
    for _ in range(4):
        value, slope = hermite(s)
        s = jnp.clip(s - value / jnp.where(slope > 0, slope, 1.0), 0.0, 1.0)
    return jnp.where(found, ts[-1] - (ts[i] + s * h), period_max), found


# ----------------------------------------------------------------------------- the orbit


class OrbitOptions(eqx.Module):
    """Options of the shooting and of the one-period propagators (see :func:`periodic_orbit`)."""

    period_max: float = 100.0
    panels: int = eqx.field(static=True, default=8)
    max_iter: int = eqx.field(static=True, default=20)
    tol: float = 1e-6
    neutral_tol: float = 1e-6
    distance_tol: float = 1e-3
    n_probe: int = eqx.field(static=True, default=256)
    settle_periods: int = eqx.field(static=True, default=64)
    config: SolverConfig = SolverConfig(rtol=1e-11, atol=1e-11)


def _nodes(T, panels, dtype):
    """Composite 8-point Gauss–Legendre nodes and weights on [0, T] (``panels`` panels)."""
    width = T / panels
    left = width * jnp.arange(panels, dtype=dtype)
    nodes = left[:, None] + 0.5 * width * (jnp.asarray(_GL_NODES, dtype) + 1.0)
    weights = jnp.broadcast_to(0.5 * width * jnp.asarray(_GL_WEIGHTS, dtype), nodes.shape)
    return nodes.reshape(-1), weights.reshape(-1)


def _transient(model, state0, t0, t_s, config, options):
    """Direct solve to t_s, with the means sampled over its last ``period_max`` (at most)."""
    ts = jnp.linspace(jnp.maximum(t0, t_s - options.period_max), t_s, options.n_probe)
    sol = _solve(model, state0, t0, t_s, config, _save_state, ts=ts)
    state = jax.tree_util.tree_map(lambda a: a[-1], sol.ys)
    return state, (ts, sol.ys.mean), from_diffrax(sol.result), sol.stats["num_steps"]


def _orbit(model, state0, t0, t_s, config, options: OrbitOptions, extra_times=None):
    """The transient to t_s, the shooting from its state, then the propagators over one period.

    ``extra_times(T, τ)``: further times in [0, T] at which (p, Φ, Q) are returned (in the same
    solve), or None. Returns the orbit (its status combined with the transient's) and them."""
    state_s, (ts, means), transient_status, steps = _transient(model, state0, t0, t_s, config,
                                                               options)
    config_orbit = options.config
    x_s = state_s.mean
    f_s = model.mean_field(t_s, x_s)
    rates = jax.vmap(model.mean_field)(ts, means)
    T0, found = _period_guess(ts, means, rates, x_s, f_s, options.period_max)
    # The guess T0 does not move the fixed point: no derivative flows through it.
    T0 = jax.lax.stop_gradient(T0)
    x, T, J, converged, shoot_steps = _shoot(model, x_s, f_s, T0, config_orbit,
                                             options.max_iter, options.tol)
    converged = converged & found
    # Keep the propagator solve finite where the shooting failed (its outputs become NaN below).
    T_safe = jnp.where(converged, T, 1.0)
    x_safe = jnp.where(converged, x, x_s)
    dim = x.shape[0]
    eye = jnp.eye(dim, dtype=x.dtype)
    # The phase offset τ = Z·(u_s − p(0)) is needed before the propagator solve (the extra
    # times may depend on it): its value from the shooting's monodromy at the fixed point (held
    # constant); its derivative, straight through, from the propagator solve's monodromy.
    f = model.mean_field(T_safe, x_safe)
    tau_guess = jax.lax.stop_gradient(_phase_response(J[:dim, :dim] + eye, f) @ (x_s - x_safe))
    nodes, weights = _nodes(T_safe, options.panels, x.dtype)
    extra = jnp.zeros(0, x.dtype) if extra_times is None else extra_times(T_safe, tau_guess)
    times = jnp.concatenate([nodes, extra, T_safe[None]])
    order = jnp.argsort(times)
    sol = _solve(model, (x_safe, eye, jnp.zeros_like(eye)), jnp.zeros_like(T_safe), T_safe,
                 config_orbit, _save_state, ts=times[order], vector_field=_propagator_field)
    ys = jax.tree_util.tree_map(lambda a: a[jnp.argsort(order)], sol.ys)
    points, props, noises = jax.tree_util.tree_map(lambda a: a[:nodes.shape[0]], ys)
    extras = jax.tree_util.tree_map(lambda a: a[nodes.shape[0]:-1], ys)
    M, Q = ys[1][-1], ys[2][-1]
    Z = _phase_response(M, f)
    tau_live = Z @ (x_s - x_safe)
    tau = tau_guess + tau_live - jax.lax.stop_gradient(tau_live)
    phase_variance_rate = Z @ Q @ Z / T_safe
    D_phi = 0.5 * (2 * jnp.pi / T_safe) ** 2 * phase_variance_rate

    multipliers = jnp.linalg.eigvals(jax.lax.stop_gradient(M))
    distance_to_one = jnp.abs(multipliers - 1.0)
    order = jnp.argsort(distance_to_one)
    neutral, others = multipliers[order[0]], multipliers[order[1:]]
    others = others[jnp.argsort(-jnp.abs(others))]
    multipliers = jnp.concatenate([neutral[None], others])
    neutral_ok = jnp.linalg.norm(M @ f - f) <= options.neutral_tol * jnp.linalg.norm(f)
    stable = jnp.all(jnp.abs(others) < 1.0)
    settled = jnp.linalg.norm(x - x_s) <= options.distance_tol * jnp.linalg.norm(x)

    status = Status.where(converged & neutral_ok, Status.success, Status.no_periodic_orbit)
    status = Status.where((status == Status.success) & ~(stable & settled),
                          Status.unstable_periodic_orbit, status)
    status = Status.where((status == Status.success) & (from_diffrax(sol.result) !=
                                                        Status.success),
                          from_diffrax(sol.result), status)
    status = _combine(transient_status, status)
    ok = status == Status.success
    nan = lambda a: jnp.where(ok, a, jnp.nan)  # noqa: E731
    orbit = PeriodicOrbit(
        point=nan(x), period=nan(T), t_anchor=t_s, multipliers=nan(multipliers),
        monodromy=nan(M), noise=nan(Q), phase_response=nan(Z), phase_offset=nan(tau),
        phase_diffusion=nan(D_phi),
        node_times=nan(nodes), node_weights=nan(weights), node_points=nan(points),
        node_propagators=nan(props), node_noise=nan(noises), state=state_s,
        status=status, num_steps=steps + shoot_steps + sol.stats["num_steps"],
    )
    return orbit, extras


def _combine(transient, orbit):
    """No locked orbit takes precedence (a chaotic mean field also makes the linearized
    covariance diverge); then a failed transient; then the orbit's own status."""
    no_orbit = (orbit == Status.no_periodic_orbit) | (orbit == Status.unstable_periodic_orbit)
    return Status.where(no_orbit | (transient == Status.success), orbit, transient)


@eqx.filter_jit
def _periodic_orbit(model, state0, t0, t_transient, config, options, throw):
    orbit, _ = _orbit(model, _initial(model, state0), t0, t_transient, config, options)
    status = mark_nonfinite(orbit.status, (orbit.period, orbit.point))
    orbit = eqx.tree_at(lambda o: o.status, orbit, status)
    if throw:
        orbit = eqx.tree_at(lambda o: o.period, orbit,
                            status.error_if(orbit.period, status != Status.success))
    return orbit


def _check_scalar_time(name, value):
    if jnp.ndim(value) != 0:
        raise ValueError(f"`{name}` must be a scalar time; got shape {jnp.shape(value)}.")
    if _is_concrete(value) and not np.isfinite(np.asarray(value)):
        raise ValueError(f"`{name}` must be finite; got {value}.")


def _prepare(model, state0, t0):
    """Checks of the model, a given ``state0`` and ``t0``. The default initial state is built
    inside the compiled function (:func:`_initial`): physical by construction, and built
    eagerly it would cost more than the checks."""
    if not isinstance(model, AbstractModel):
        raise TypeError(f"`model` must be a qsync_jax model; got {type(model).__name__}.")
    if not isinstance(model, AbstractGaussianModel):
        raise TypeError(f"`model` must be a Gaussian model with a dense covariance (an "
                        f"AbstractGaussianModel); got {type(model).__name__} (a ring: use "
                        f"ring.to_network()).")
    if state0 is not None:
        if not isinstance(state0, GaussianState):
            raise TypeError(f"`state0` must be a GaussianState; got {type(state0).__name__}.")
        _check_state0(model, state0)
    _check_scalar_time("t0", t0)


def _initial(model, state0):
    return model.initial_state() if state0 is None else state0


def _check_options(options):
    if not isinstance(options, OrbitOptions):
        raise TypeError(f"`options` must be an OrbitOptions; got {type(options).__name__}.")
    for name in ("period_max", "tol", "neutral_tol", "distance_tol"):
        value = getattr(options, name)
        if _is_concrete(value) and not (np.isfinite(value) and value > 0):
            raise ValueError(f"`options.{name}` must be positive and finite; got {value}.")
    for name in ("panels", "max_iter", "n_probe", "settle_periods"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`options.{name}` must be a positive integer; got {value!r}.")


def periodic_orbit(
    model: AbstractGaussianModel,
    *,
    t_transient: float = 400.0,
    state0: GaussianState | None = None,
    t0: float = 0.0,
    config: SolverConfig = SolverConfig(),
    options: OrbitOptions = OrbitOptions(),
    throw: bool = True,
) -> PeriodicOrbit:
    r"""The locked periodic orbit of the mean field, its Floquet data and phase diffusion.

    Mean and covariance are integrated from ``t0`` to ``t_transient`` (as :func:`evolve`), then
    the orbit through (the section of) the mean at ``t_transient`` is found by Newton shooting
    with a phase condition (module docstring), starting from the period guessed from the
    transient's last return to the section (so the transient must last at least one period), and
    the variational and covariance equations are integrated over one period.

    **Main arguments:** ``model``, any autonomous :class:`qsync_jax.AbstractGaussianModel`
    (dense covariance).

    **Other arguments:**

    - ``t_transient``: when the trajectory is taken to be on the orbit (default 400; for Mari et
      al.'s pair the distance to the orbit then is ~2e-5 of its radius, the slowest
      non-neutral multiplier being 0.87 per period of 6.44).
    - ``state0``, ``t0``, ``config``: initial state, time and solver of the transient
      (:func:`evolve`).
    - ``options``: an :class:`OrbitOptions` — ``period_max`` (longest period looked for),
      ``panels`` (Gauss–Legendre panels of 8 nodes per period), ``max_iter``/``tol`` (Newton
      stops when its last step is below ``tol``, relative; the step after it, quadratically
      smaller (~tol²), is taken, and the implicit-function step is one more: the point is
      accurate to the orbit solver's tolerance; default 1e-6),
      ``neutral_tol`` (‖Mf − f‖ ≤ tol‖f‖ checks the neutral multiplier), ``distance_tol`` (the
      trajectory at ``t_transient`` must be this close to the orbit, relative), ``n_probe``
      (samples of the transient's last ``period_max`` that guess the period, its last return
      to the section located by cubic Hermite interpolation), ``settle_periods`` (window
      averages: periods over which the first-order settling correction is summed),
      ``config`` (solver of the orbit: tighter than the transient's by default).
    - ``throw``: raise when no locked orbit is found (default); with ``throw=False`` the status
      says why and every output is NaN: :attr:`Status.no_periodic_orbit` (no convergence:
      unlocked/quasi-periodic, chaotic or not oscillating) or
      :attr:`Status.unstable_periodic_orbit` (an orbit the trajectory does not settle on).

    Differentiable with respect to model parameters through the implicit function theorem at
    the shooting fixed point, in reverse mode (``jax.grad``) and, with
    ``adjoint=diffrax.ForwardMode()`` in both ``config`` and ``options.config``, in forward mode
    (``jax.jacfwd``); works under ``jit`` and ``vmap``.
    """
    _prepare(model, state0, t0)
    _check_scalar_time("t_transient", t_transient)
    _check_options(options)
    dtype = jnp.result_type(float)
    t0, t_transient = jnp.asarray(t0, dtype), jnp.asarray(t_transient, dtype)
    if _is_concrete(t0, t_transient) and not float(t_transient) >= float(t0):
        raise ValueError(f"`t_transient` must be ≥ t0 = {float(t0)}; got {float(t_transient)}.")
    return _periodic_orbit(model, state0, t0, t_transient, config, options, throw)


# ----------------------------------------------------------------------------- window averages


def _affine_power(M, Q, k, kind, n_bits=32):
    """(M, Q) composed k times, 0 ≤ k < 2^n_bits an integer: (M^k, Σ_{j<k} M^j Q M^jᵀ), by
    binary powers over the bits of k up to its highest (``kind``: the loop, as Diffrax's)."""

    def body(carry):
        bit, R_M, R_Q, B_M, B_Q = carry
        use = ((k >> bit) & 1) == 1
        R_M, R_Q = (jnp.where(use, B_M @ R_M, R_M),
                    jnp.where(use, B_M @ R_Q @ B_M.T + B_Q, R_Q))
        return bit + 1, R_M, R_Q, B_M @ B_M, B_M @ B_Q @ B_M.T + B_Q

    eye = jnp.eye(M.shape[0], dtype=M.dtype)
    init = (jnp.zeros_like(k), eye, jnp.zeros_like(Q), M, Q)
    _, R_M, R_Q, _, _ = eqxi.while_loop(lambda c: (k >> c[0]) > 0, body, init,
                                        max_steps=n_bits, kind=kind)
    return R_M, R_Q


def _quadrature(fn, t_k, C, points, props, noises, weights, times):
    """Σ_q w_q fn(t_k + s_q, (p(s_q), Φ(s_q) C Φ(s_q)ᵀ + Q(s_q))): ∫ fn over nodes s_q of a
    period that starts at t_k with covariance C (t_k and C may carry leading period axes)."""
    covs = props @ C[..., None, :, :] @ jnp.swapaxes(props, -1, -2) + noises
    t = t_k[..., None] + times
    batch = t.shape
    flat = jax.vmap(fn)(t.reshape(-1), GaussianState(
        mean=jnp.broadcast_to(points, (*batch, points.shape[-1])).reshape(-1, points.shape[-1]),
        cov=covs.reshape(-1, *covs.shape[-2:])))
    return jax.tree_util.tree_map(
        lambda v: jnp.tensordot(v.reshape(*batch, *v.shape[1:]), weights,
                                axes=([len(batch) - 1], [0])), flat)


PERIODS_PER_CHUNK = 32
"""Whole periods evaluated together in :func:`_periods_integral` (one vectorized batch of
PERIODS_PER_CHUNK × nodes states)."""


def _periods_integral(orbit: PeriodicOrbit, fn, C, t_first, n_periods, max_periods, kind):
    """Σ over n_periods whole periods from (t_first, C) of ∫ fn dt; the covariance after them.

    The covariances at the periods' starts follow by C ↦ M C Mᵀ + Q (sequential, cheap); the
    quadratures of PERIODS_PER_CHUNK periods are evaluated as one batch."""
    T, M, Q, K = orbit.period, orbit.monodromy, orbit.noise, PERIODS_PER_CHUNK

    def chunk(k0, C):
        def advance(C, k):
            return jnp.where(k < n_periods, M @ C @ M.T + Q, C), C

        k = k0 + jnp.arange(K, dtype=k0.dtype)
        C, starts = jax.lax.scan(advance, C, k)
        values = _quadrature(fn, t_first + k * T, starts, orbit.node_points,
                             orbit.node_propagators, orbit.node_noise, orbit.node_weights,
                             orbit.node_times)
        inside = k < n_periods
        return C, jax.tree_util.tree_map(
            lambda v: jnp.sum(jnp.where(inside.reshape((K,) + (1,) * (v.ndim - 1)), v, 0.0),
                              axis=0), values)

    k0 = jnp.zeros_like(T)
    acc0 = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype),
                                  jax.eval_shape(chunk, k0, C)[1])

    def body(carry):
        k, C, acc = carry
        C, values = chunk(k, C)
        return k + K, C, jax.tree_util.tree_map(jnp.add, acc, values)

    _, C, acc = eqxi.while_loop(lambda c: c[0] < n_periods, body, (k0, C, acc0),
                                max_steps=-(-max_periods // K), kind=kind)
    return C, acc


def _settled_covariance(model, orbit: PeriodicOrbit, tau, k_stop, n_periods, linear=None):
    r"""The covariance at the start of period n = min(k_stop, n_periods) counted from t_s − τ,
    to first order in the trajectory's remaining distance from the orbit at t_s; and n.

    At t_s the mean is u_s = p(0) + δ = p(τ) + e to first order: the trajectory is at the orbit's
    phase τ = Z·δ (``phase_offset``) and passes p(0) at t_s − τ, when its covariance is
    C_s − τĊ (Ċ = AC_s + C_sAᵀ + D); e = δ − τ f(p(0)) decays along the orbit as
    δu(t_s − τ + kT + s) = Φ(s) M^k e. While it does, the covariance equation sees A + ∂A[δu]
    and D + ∂D[δu] (∂: derivative in the mean, along δu), so that the covariance at the start of
    period k is C_k + δC_k, with C_{k+1} = M C_k Mᵀ + Q and

    $$\delta C_{k+1} = M\Big(\delta C_k
      + \int_0^T \Phi(s)^{-1} S_k(s)\,\Phi(s)^{-\top}ds\Big)M^\top,\qquad
      S_k = \partial A[\delta u]\,C + C\,\partial A[\delta u]^\top + \partial D[\delta u],$$

    C = Φ(s) C_k Φ(s)ᵀ + Q(s) (the integral by the period's quadrature nodes). Both terms are
    errors linear in δ that would otherwise persist: the phase variance keeps them (there is no
    restoring force along the orbit). Left out: terms of second order in δ. Periods from
    ``k_stop`` on (the window's) are not corrected.

    With G(s)[a] = Φ⁻¹ ∂A[Φ a] and N = QΦ⁻ᵀ the integral is X_k = ∫(Y + Yᵀ + Φ⁻¹∂D[Φa_k]Φ⁻ᵀ),
    Y = G[a_k](Φ C_k + N), a_k = M^k e. It is linear in a_k: ``linear`` (default: when
    2n ≤ ``n_periods``) takes X_k = Ȳ_k + Ȳ_kᵀ + Σ_i a_k,i D̄_i, Ȳ_k = Σ_i a_k,i (H̄_i C_k + K̄_i),
    with H̄_i = ∫G[e_i]Φ, K̄_i = ∫G[e_i]N, D̄_i = ∫Φ⁻¹∂D[Φe_i]Φ⁻ᵀ integrated once (2n
    derivatives per node; then a few products per period); otherwise each period's derivatives
    are taken along a_k at every node (one per period and node, memory O(nodes·(2n)²))."""
    M, Q = orbit.monodromy, orbit.noise
    p, props, noises = orbit.node_points, orbit.node_propagators, orbit.node_noise
    s, w = orbit.node_times, orbit.node_weights
    t, delta = jnp.zeros_like(orbit.period), orbit.state.mean - orbit.point
    e = delta - tau * model.mean_field(t, orbit.point)
    AC = model.drift(t, orbit.point) @ orbit.state.cov
    C0 = orbit.state.cov - tau * (AC + AC.T + model.diffusion(t, orbit.point))
    inv_props = jnp.linalg.inv(props)
    noise_inv = noises @ jnp.swapaxes(inv_props, -1, -2)  # Q(s) Φ(s)⁻ᵀ

    def derivatives(t, u, du, inv):  # Φ⁻¹ ∂A[du] and Φ⁻¹ ∂D[du] Φ⁻ᵀ (zero, free, if D is fixed)
        _, out = jax.jvp(lambda v: (inv @ model.drift(t, v), inv @ model.diffusion(t, v) @ inv.T),
                         (u,), (du,))
        return out

    if linear is None:
        linear = e.shape[0] <= n_periods
    if linear:  # G[e_i] and ∂D's term along Φ(s) e_i (the columns of Φ): (nodes, i, 2n, 2n)
        G, dD = jax.vmap(jax.vmap(derivatives, in_axes=(None, None, 1, None)))(s, p, props,
                                                                               inv_props)
        H = jnp.einsum("q,qiab,qbc->iac", w, G, props)
        K = jnp.einsum("q,qiab,qbc->iac", w, G, noise_inv)
        D_bar = jnp.einsum("q,qiab->iab", w, dD)

        def source(C, a):
            Y = jnp.tensordot(a, H, axes=1) @ C + jnp.tensordot(a, K, axes=1)
            return Y + Y.T + jnp.tensordot(a, D_bar, axes=1)
    else:
        def source(C, a):
            G, dD = jax.vmap(derivatives)(s, p, props @ a, inv_props)
            Y = G @ (props @ C + noise_inv)
            return jnp.tensordot(w, Y + jnp.swapaxes(Y, -1, -2) + dD, axes=1)

    def advance(carry, k):
        C, a, dC = carry
        inside = k < k_stop
        return (jnp.where(inside, M @ C @ M.T + Q, C), M @ a,
                jnp.where(inside, M @ (dC + source(C, a)) @ M.T, dC)), None

    (C, _, dC), _ = jax.lax.scan(advance, (C0, e, jnp.zeros_like(C0)), jnp.arange(n_periods))
    return C + dC, jnp.minimum(k_stop, n_periods)


def _window_phases(window, t_origin, T):
    """Period index k ≥ 0 and phase s ∈ [0, T] of the window's ends: t = t_origin + kT + s."""
    k = jnp.maximum(jnp.floor((window - t_origin) / T), 0.0)
    return k, jnp.clip(window - t_origin - k * T, 0.0, T)


@eqx.filter_jit
def _floquet_time_average(model, fn, window, t0, state0, config, t_transient, options,
                          max_periods, throw):
    t_a, t_b = window[0], window[1]
    t_s = jnp.minimum(t_transient, t_a)
    panels = options.panels

    def origin(tau):  # periods count from t_s − τ (the trajectory at p(0)), or from t_s if later
        return jnp.where(t_a >= t_s - tau, t_s - tau, t_s)  # than the window's start

    def extra_times(T, tau):  # Gauss–Legendre nodes on [0, s_a] and [0, s_b], and s_b itself
        _, (s_a, s_b) = _window_phases(window, origin(tau), T)
        return jnp.concatenate([_nodes(s_a, panels, T.dtype)[0], _nodes(s_b, panels, T.dtype)[0],
                                s_b[None]])

    orbit, extras = _orbit(model, _initial(model, state0), t0, t_s, config, options,
                           extra_times)
    status = orbit.status
    ok = status == Status.success  # else finite stand-ins keep the algebra finite (NaN below)
    T, tau = jnp.where(ok, orbit.period, 1.0), jnp.where(ok, orbit.phase_offset, 0.0)
    orbit = eqx.tree_at(lambda o: o.period, orbit, T)
    # The extras were saved at times that carry τ's value only: add its derivative, ẏ ∂s/∂τ dτ.
    s_extra = extra_times(jax.lax.stop_gradient(T), tau)
    ds = s_extra - jax.lax.stop_gradient(s_extra)
    rates = jax.vmap(_propagator_field, in_axes=(0, 0, None))(s_extra, extras, model)
    extras = jax.tree_util.tree_map(
        lambda y, r: y + r * ds.reshape((-1,) + (1,) * (y.ndim - 1)), extras, rates)
    t_origin = origin(tau)
    (k_a, k_b), (s_a, s_b) = _window_phases(window, t_origin, T)
    m = 8 * panels
    partial = [jax.tree_util.tree_map(lambda a: a[i * m:(i + 1) * m], extras) for i in (0, 1)]
    weights = [_nodes(s, panels, T.dtype)[1] for s in (s_a, s_b)]
    times = [_nodes(s, panels, T.dtype)[0] for s in (s_a, s_b)]

    # ∫_{t_a}^{t_b} = Σ_{k_a ≤ k < k_b} ∫_period k − ∫_{[0, s_a]} of period k_a + ∫_{[0, s_b]}
    # of period k_b; the covariance at the start of period k is (M, Q) composed k times.
    C_settled, k_settled = _settled_covariance(model, orbit, t_s - t_origin, k_a.astype(int),
                                               options.settle_periods)
    kind = "lax" if isinstance(config.adjoint, dfx.ForwardMode) else "checkpointed"
    P_M, P_Q = _affine_power(orbit.monodromy, orbit.noise, k_a.astype(int) - k_settled, kind)
    C_a = P_M @ C_settled @ P_M.T + P_Q
    C_b, acc = _periods_integral(orbit, fn, C_a, t_origin + k_a * T, k_b - k_a, max_periods,
                                 kind)
    head = _quadrature(fn, t_origin + k_a * T, C_a, *partial[0], weights[0], times[0])
    tail = _quadrature(fn, t_origin + k_b * T, C_b, *partial[1], weights[1], times[1])
    acc = jax.tree_util.tree_map(lambda w, a, b: w - a + b, acc, head, tail)
    value = jax.tree_util.tree_map(lambda v: v / (t_b - t_a), acc)
    point_b, prop_b, noise_b = jax.tree_util.tree_map(lambda a: a[-1], extras)
    state_b = GaussianState(point_b, prop_b @ C_b @ prop_b.T + noise_b)
    status = Status.where((status == Status.success) & (k_b - k_a > max_periods),
                          Status.max_steps_reached, status)  # the loop stopped short
    status = mark_nonfinite(status, (value, state_b))
    value = jax.tree_util.tree_map(lambda v: jnp.where(status == Status.success, v, jnp.nan),
                                   value)
    if throw:
        value = status.error_if(value, status != Status.success)
    return TimeAverage(value=value, state=state_b, status=status, num_steps=orbit.num_steps)


def floquet_time_average(
    model: AbstractGaussianModel,
    fn,
    window,
    *,
    state0: GaussianState | None = None,
    t0: float = 0.0,
    config: SolverConfig = SolverConfig(),
    throw: bool = True,
    t_transient: float = 250.0,
    options: OrbitOptions = OrbitOptions(),
    max_periods: int = 1_000_000,
) -> TimeAverage:
    r"""Window average by Floquet propagation (``qs.time_average(..., method="floquet")``).

    The mean and covariance are integrated directly from ``t0`` to t_s = min(``t_transient``,
    t_a); there the locked orbit is found (:func:`periodic_orbit`), the covariance is carried to
    the period containing t_a by C ↦ M C Mᵀ + Q composed k times (binary powers), and with
    t = t_s − τ + kT + s (τ: the trajectory's phase offset, ``PeriodicOrbit.phase_offset``),

    $$\int_{t_a}^{t_b} = \sum_{k_a \le k < k_b} \int_{\text{period } k}
      - \int_0^{s_a}\Big|_{k_a} + \int_0^{s_b}\Big|_{k_b},$$

    each integral over s being Σ_q w_q fn(t_k + s_q, (p(s_q), Φ(s_q) C_k Φ(s_q)ᵀ + Q(s_q))) —
    exact up to the quadrature (``options.panels`` panels of 8 Gauss–Legendre nodes on [0, T],
    [0, s_a] and [0, s_b], all saved by the one propagator solve) and the tolerances. Cost: the
    transient and a few periods of integration plus O(periods in the window) small matrix
    products, whatever the window's start. Derivatives as for :func:`periodic_orbit` (forward
    mode with ``diffrax.ForwardMode()`` in ``config`` and ``options.config``).

    At t_s the trajectory is still off the orbit (Mari et al.'s pair: 7e-4 of the radius at
    t_s = 250, 2e-5 at 400). What that does to the covariance over the periods before the
    window is added to first order (:func:`_settled_covariance`, ``options.settle_periods``
    periods): without it the phase variance would keep an error linear in the distance (the
    test ``test_short_transient_is_corrected_to_first_order``: 2e-6 without, 2e-8 with it, for
    [700, 800] from t_s = 250; ``benchmarks/bench_floquet.py`` records the accuracy of the
    default against a direct solve at rtol 1e-11). Hence the default ``t_transient`` = 250;
    shorter transients leave errors of second order in the distance. Periods of the window
    itself are not corrected: start windows well after ``t_transient``.
    ``max_periods`` (static) bounds the number of whole periods in the window (more:
    :attr:`Status.max_steps_reached`, NaN values).
    Without a locked orbit the status says so and the values are NaN (see :func:`periodic_orbit`).
    """
    window = jnp.asarray(window)
    if jnp.shape(window) != (2,):
        raise ValueError(f"window must be (t_a, t_b); got shape {jnp.shape(window)}.")
    _prepare(model, state0, t0)
    _check_times("window", window, t0)
    _check_scalar_time("t_transient", t_transient)
    _check_options(options)
    if isinstance(max_periods, bool) or not isinstance(max_periods, (int, np.integer)) or \
            max_periods < 1:
        raise ValueError(f"`max_periods` must be a positive integer; got {max_periods!r}.")
    dtype = jnp.result_type(float)
    window = window.astype(dtype)
    t0, t_transient = jnp.asarray(t0, dtype), jnp.asarray(t_transient, dtype)
    if _is_concrete(t0, t_transient) and not float(t_transient) >= float(t0):
        raise ValueError(f"`t_transient` must be ≥ t0 = {float(t0)}; got {float(t_transient)}.")
    return _floquet_time_average(model, fn, window, t0, state0, config, t_transient, options,
                                 int(max_periods), throw)
