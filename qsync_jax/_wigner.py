r"""Truncated-Wigner ensembles: the nonlinear quantum dynamics beyond linearization, sampled.

The Wigner function W(u) of the modes (quadratures u, conventions of :mod:`qsync_jax._gaussian`)
obeys, for the models of this library, a Fokker–Planck equation plus third-order derivative
terms from cubic Hamiltonians (the radiation-pressure coupling a†a(b + b†)). Dropping those
(the *truncated Wigner* approximation, docs/truncated-wigner.md) leaves the Itô SDE with additive
noise

$$du = F(t, u)\,dt + B\,dW,\qquad B B^\top = D,\qquad
  F = e^{-\nabla^2/4} f = f - \tfrac14 \nabla^2 f,$$

sampled from the Wigner function of the initial Gaussian state (mean d, covariance C₀: u₀ ~
N(d, C₀)). Here f is the model's ``mean_field`` — d⟨u⟩/dt in a coherent state, the mean-field
factorization ⟨a†a⟩ → |⟨a⟩|² — and D its ``diffusion``. F is the Weyl symbol of the drift: its
average over a coherent state's Wigner function (vacuum noise, covariance ½·I) is f, so
F = exp(−∇²/4) f, and for f at most quadratic in u (every model of the library: linear ones,
radiation pressure) F = f − ¼∇²f exactly; for the optomechanical sites ṗ_b gets −g/√2
(a†a = |α|² − ½ in Weyl order). Symmetrically ordered moments are ensemble averages:
⟨u⟩ = E[u], C = Cov[u] (C_ij = ½⟨{u_i, u_j}⟩ − ⟨u_i⟩⟨u_j⟩). For linear models the truncation
drops nothing: the ensemble reproduces :func:`qsync_jax.evolve` exactly, up to sampling error.

**Integrator.** Stochastic Heun with fixed step ``dt`` (strong order 1 and weak order 2 for
additive noise): ũ = u + F(t, u)dt + BΔW, u' = u + ½[F(t, u) + F(t + dt, ũ)]dt + BΔW,
ΔW ~ N(0, dt·I). One ``lax.scan`` over save intervals; a chunk's state is U (2n, c), one row per
quadrature and the trajectories along the fast axis. For a mean field that does not read t
(every model of the library) F is written out as c + A u + ½ H[u, u] term by term on the rows,
so that one step compiles to a few fused passes over the trajectories.

**Statistics** are streamed: at each save time each trajectory k adds to group k mod G (G =
``n_groups``) the group's count, mean and centred second moments (merged across chunks and
devices with the exact pairwise formulas of Chan et al.) and sums of per-trajectory observables
(relative phases, histogram counts). Estimates come from all groups; standard errors from the
delete-one-group jackknife, for every quantity alike (means, covariances, S_c, S_p, phase
statistics). Memory is O(T · G · (2n)²), whatever the number of trajectories.

**Randomness.** Trajectory k draws its initial sample and a 64-bit key of its own from
``jax.random.fold_in(key, k)``; its increments come in blocks of K = ``_NOISE_BLOCK`` steps, the
random words of block b being the Threefry-2x32 hash (the generator behind ``jax.random``) of
the counter (b, w) under the trajectory's key, evaluated for all trajectories of a chunk at
once. No two trajectories share noise, and the result depends on ``key`` and
``n_trajectories`` only — not on ``chunk_size``, ``devices`` or the number of devices (up to
the order of floating-point sums). The standard normal numbers of the increments are computed
in float32 from 23 random bits each (z = √2 erf⁻¹(u), u on a grid of 2²³ points symmetric
about 0) — about three times cheaper than float64 normals, and statistically equivalent for
every output: the distribution is exactly symmetric (odd moments 0), its variance is
1 − 2·10⁻⁷ and its fourth moment 3 − 10⁻⁵, its tails are cut at |z| = 5.3 (probability 10⁻⁷).
Only moments of the increments up to the fourth enter the weak order-2 error of ensemble
averages, and these biases would take ~10¹³ trajectories to resolve (the initial samples,
drawn once, are float64 normals).

**Five-point increments** (``increments="five_point"``). Ensemble averages need the law of each
increment only through its moments: the weak order-2 error of Heun with additive noise
(Kloeden & Platen, *Numerical Solution of SDEs*, §14.2 and §15.1) is unchanged when z is
replaced by any ξ whose moments up to the fifth are those of N(0, 1). Here ξ takes 0 with
probability ½ and ±√(2 − √2), ±√(2 + √2) with ⅛ each (E ξ² = 1, E ξ⁴ = 3, odd moments 0):
three random bits per number instead of 32 and no transcendental function. For linear models
the means and covariances of the ensemble are those of Gaussian increments exactly; single
trajectories are then not samples of the SDE's paths.
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax.extend.random import threefry2x32_p
from jax.sharding import Mesh, PartitionSpec
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ._gaussian import GaussianState
from ._integrate import _check_times
from ._measures import complete_sync, phase_sync
from ._models._base import AbstractGaussianModel
from ._results import AbstractResult
from ._status import Status, mark_nonfinite, status_message
from ._sweep._execute import check_devices

_AXIS = "trajectories"
_PER_DEVICE = {"cpu": 1024}
"""Default trajectories per device and chunk on CPUs (the working set stays in cache);
accelerators get ``_PER_ACCELERATOR``."""
_PER_ACCELERATOR = 65536
_NOISE_BLOCK = 16
"""Steps whose increments one ``jax.random.normal`` call draws (part of the random stream)."""
_GRID_TOL = 1e-6
"""Save times must lie within this many steps of the grid t0 + k·dt."""


class WignerSave(eqx.Module):
    """What :func:`wigner_ensemble` estimates besides the mean and covariance (always kept).

    **Arguments:**

    - ``pairs``: a pair ``(i, j)`` of mode indices or a sequence of pairs; for each, S_c
      (relative and absolute), S_p and relative-phase statistics are estimated.
    - ``phase_bins``: number of bins of the relative-phase histogram on [−π, π) (0: none).
    - ``trajectories``: also keep every trajectory at every save time (memory N·T·2n floats).

    All fields are static: equal instances reuse the compiled chunk.
    """

    pairs: tuple[tuple[int, int], ...] = eqx.field(static=True)
    phase_bins: int = eqx.field(static=True)
    trajectories: bool = eqx.field(static=True)

    def __init__(self, pairs=(), *, phase_bins: int = 0, trajectories: bool = False):
        pairs = tuple(pairs)
        if len(pairs) == 2 and all(isinstance(k, (int, np.integer)) for k in pairs):
            pairs = (pairs,)
        if not all(
            isinstance(p, Sequence) and len(p) == 2
            and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in p)
            and p[0] != p[1]
            for p in pairs
        ):
            raise ValueError(
                f"`pairs` must be a pair (i, j) of distinct mode indices or a sequence of such "
                f"pairs; got {pairs!r}."
            )
        if isinstance(phase_bins, bool) or not isinstance(phase_bins, (int, np.integer)) or (
            phase_bins < 0
        ):
            raise ValueError(f"`phase_bins` must be an integer ≥ 0; got {phase_bins!r}.")
        if phase_bins and not pairs:
            raise ValueError("`phase_bins` > 0 needs `pairs` (whose relative phase to bin).")
        self.pairs = tuple((int(i), int(j)) for i, j in pairs)
        self.phase_bins = int(phase_bins)
        self.trajectories = bool(trajectories)


class WignerEnsemble(AbstractResult):
    """Result of :func:`wigner_ensemble`: estimates with their standard errors.

    - ``ts``: (T,) save times.
    - ``mean``, ``mean_stderr``: (T, 2n) ensemble mean ⟨u⟩ and its standard error.
    - ``cov``, ``cov_stderr``: (T, 2n, 2n) covariance (symmetrically ordered, unbiased
      estimator) and its standard error.
    - ``measures``, ``measures_stderr``: dicts of (T, P) arrays for the P pairs of
      :class:`WignerSave` — ``complete_sync`` (relative S_c: fluctuations about the ensemble
      mean, as in the linearized theory), ``complete_sync_absolute``, ``phase_sync`` (S_p; the
      phase quadrature has zero mean in the frame of the mean field, so its relative and absolute
      forms coincide), ``phase_cos``/``phase_sin`` (E[cos Δφ], E[sin Δφ] of the relative phase
      Δφ = φ_i − φ_j of each trajectory, φ = atan2(p, x)), ``phase_locking``
      (|E[e^{iΔφ}]|), ``phase_difference`` (arg E[e^{iΔφ}]), and with ``phase_bins`` B the
      (T, P, B) probability density ``phase_histogram`` of Δφ on bins of [−π, π)
      (``phase_bin_edges``).
    - ``trajectories``: (N, T, 2n) every trajectory when asked, else ``None``.
    - ``status``: :class:`qsync_jax.Status` — ``diverged`` (and NaN estimates) if any
      trajectory became non-finite; ``num_steps``: steps per trajectory; ``n_trajectories``,
      ``dt``, ``n_groups``: what was run.
    """

    ts: Float[Array, " T"]
    mean: Float[Array, "T 2n"]
    cov: Float[Array, "T 2n 2n"]
    mean_stderr: Float[Array, "T 2n"]
    cov_stderr: Float[Array, "T 2n 2n"]
    measures: dict
    measures_stderr: dict
    phase_bin_edges: Float[Array, " B+1"] | None
    trajectories: Float[Array, "N T 2n"] | None
    status: Status
    num_steps: Int[Array, ""]
    n_trajectories: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    n_groups: int = eqx.field(static=True)

    def outputs(self) -> PyTree:
        out = {"mean": self.mean, "cov": self.cov, "mean_stderr": self.mean_stderr,
               "cov_stderr": self.cov_stderr, **self.measures}
        return out | {f"{k}_stderr": v for k, v in self.measures_stderr.items()}

    def save_times(self) -> Float[Array, " T"]:
        return self.ts


# --------------------------------------------------------------------------- the SDE


class _Drift(eqx.Module):
    """F(t, u) = f(t, u) − ¼∇²f of every column of U (2n, c), f at most quadratic in u: the
    Laplacian is then constant in u and is evaluated once per step at u = 0 (module
    docstring). The general form, for mean fields that depend on t."""

    model: AbstractGaussianModel

    def __call__(self, t, U):
        dim = U.shape[0]
        hessian = jax.hessian(self.model.mean_field, argnums=1)(t, jnp.zeros(dim, U.dtype))
        laplacian = jnp.trace(hessian, axis1=-2, axis2=-1)
        return jax.vmap(self.model.mean_field, (None, 1), 1)(t, U) - 0.25 * laplacian[:, None]


class _SparseMatrix(eqx.Module):
    """A matrix M kept as its nonzero entries (static pattern, array values), applied to the rows
    of U (columns the trajectories) as one elementwise expression per row."""

    values: Array
    index: tuple[tuple[int, int], ...] = eqx.field(static=True)
    n_rows: int = eqx.field(static=True)

    @classmethod
    def from_dense(cls, matrix):
        matrix = np.asarray(matrix)
        i, j = np.nonzero(matrix)
        return cls(jnp.asarray(matrix[i, j]), tuple(zip(i.tolist(), j.tolist())),
                   matrix.shape[0])

    def rows(self, U) -> list:
        """The rows of M U as a list (0.0 for a zero row), for the caller to add to."""
        out = [0.0] * self.n_rows
        for n, (i, j) in enumerate(self.index):
            out[i] = out[i] + self.values[n] * U[j]
        return out


def _stack_rows(rows, U, axis=0) -> Array:
    return jnp.stack([jnp.broadcast_to(r, U.shape[1:]) for r in rows], axis)


class _QuadraticDrift(eqx.Module):
    """The same F of an autonomous mean field, written out as the sum of its nonzero terms:
    F_i(u) = c_i + Σ_j A_ij u_j + Σ_{j≤k} h_ijk u_j u_k (c = F(0), A = ∂f/∂u(0), h_ijk the
    Hessian ∂²f_i/∂u_j∂u_k(0), halved on the diagonal j = k), exact for f at most quadratic.
    Each component is one elementwise expression on the rows of U (2n, c), which the compiler
    fuses into one pass over the trajectories — several times faster than ``vmap`` of a mean
    field written for one state (reshapes, small reductions). The nonzero pattern is static,
    the coefficients are arrays (new values reuse the compiled chunk)."""

    c: Array
    linear: _SparseMatrix
    quadratic: Array
    quadratic_index: tuple[tuple[int, int, int], ...] = eqx.field(static=True)

    def __call__(self, t, U):
        rows = [self.c[i] + r for i, r in enumerate(self.linear.rows(U))]
        for n, (i, j, k) in enumerate(self.quadratic_index):
            rows[i] = rows[i] + self.quadratic[n] * (U[j] * U[k])
        return _stack_rows(rows, U)


@eqx.filter_jit
def _coefficients(model, t0, dim):
    f = lambda u: model.mean_field(t0, u)  # noqa: E731
    zero = jnp.zeros(dim)
    hessian = jax.hessian(f)(zero)
    return (f(zero) - 0.25 * jnp.trace(hessian, axis1=-2, axis2=-1), jax.jacfwd(f)(zero),
            hessian)


def _is_autonomous(model, t0, dim) -> bool:
    """Whether ``model.mean_field`` provably ignores t: no operation of its traced program reads
    t (a t passed on to a nested call counts as read)."""
    jaxpr = jax.make_jaxpr(model.mean_field)(jnp.asarray(t0, float), jnp.zeros(dim)).jaxpr
    t = jaxpr.invars[0]
    return t not in jaxpr.outvars and not any(
        any(v is t for v in eqn.invars) for eqn in jaxpr.eqns)


def _wigner_drift(model: AbstractGaussianModel, t0=0.0):
    """F(t, U) on columns U (2n, c): :class:`_QuadraticDrift` for autonomous mean fields, else
    :class:`_Drift`."""
    dim = 2 * model.n_modes
    if not _is_autonomous(model, t0, dim):
        return _Drift(model)
    c, A, H = (np.asarray(x) for x in _coefficients(model, jnp.asarray(t0, float), dim))
    j, k = np.triu_indices(dim)
    h = np.where(j == k, 0.5, 1.0) * H[:, j, k]  # (2n, pairs j ≤ k)
    i, p = np.nonzero(h)
    return _QuadraticDrift(
        c=jnp.asarray(c), linear=_SparseMatrix.from_dense(A), quadratic=jnp.asarray(h[i, p]),
        quadratic_index=tuple(zip(i.tolist(), j[p].tolist(), k[p].tolist())),
    )


def _sqrt_psd(matrix, name: str) -> Array:
    """B with B Bᵀ = ``matrix`` (symmetric square root); ``ValueError`` unless PSD."""
    m = np.asarray(matrix, dtype=float)
    scale = max(1.0, float(np.max(np.abs(m))))
    if not np.allclose(m, m.T, rtol=0.0, atol=1e-10 * scale):
        raise ValueError(f"{name} (shape {m.shape}) must be symmetric.")
    lam, vec = np.linalg.eigh(0.5 * (m + m.T))
    if lam.min() < -1e-10 * scale:
        raise ValueError(
            f"{name} (shape {m.shape}) must be positive semidefinite; its smallest eigenvalue is "
            f"{lam.min():.3g}."
        )
    return jnp.asarray(vec * np.sqrt(np.clip(lam, 0.0, None)))


def _check_model_type(model) -> None:
    if not isinstance(model, AbstractGaussianModel):
        raise ValueError(
            f"`model` must be a qsync_jax.AbstractGaussianModel (a dense mean field, drift and "
            f"diffusion); got {type(model).__name__} (sample a ring as its dense network: "
            "`ring.to_network()`)."
        )


@eqx.filter_jit
def _model_probe(model, t0, mean0, u, v):
    """What :func:`_check_model` inspects, in one compiled call: the Jacobian of the mean field
    and the drift at ``mean0``, the third derivative of f along ``v`` at ``mean0 + u`` with the
    size of f there, the derivatives of D with respect to t and u, and D."""

    def along(g):
        return lambda x: jax.jvp(g, (x,), (v,))[1]

    f = lambda x: model.mean_field(t0, x)  # noqa: E731
    return (
        jax.jacfwd(f)(mean0), model.drift(t0, mean0), along(along(along(f)))(mean0 + u),
        jnp.max(jnp.abs(f(mean0 + u))), jax.jacfwd(model.diffusion, argnums=(0, 1))(t0, mean0 + u),
        model.diffusion(t0, mean0),
    )


def _check_model(model, t0, mean0) -> "_SparseMatrix":
    """The noise matrix B of ``model`` (its nonzero entries), after checking that truncated
    Wigner applies to it."""
    rng = np.random.default_rng(0)
    u, v = (jnp.asarray(rng.standard_normal(mean0.shape)) for _ in range(2))
    jac, drift, third, size, dD, D = _model_probe(model, jnp.asarray(t0, float), mean0, u, v)
    if not np.allclose(jac, drift, rtol=1e-8, atol=1e-10):
        raise ValueError(
            f"{type(model).__name__}: the Jacobian of `mean_field` differs from `drift`: the "
            "model breaks the drift contract (drift = Jacobian of the mean field)."
        )
    if not np.all(np.abs(np.asarray(third)) <= 1e-9 * (1.0 + float(size))):
        raise ValueError(
            f"{type(model).__name__}: `mean_field` is not at most quadratic in the quadratures; "
            "the truncated-Wigner drift f − ∇²f/4 implemented here is exact only for quadratic "
            "mean fields (Hamiltonians up to cubic order)."
        )
    if any(np.any(np.asarray(d) != 0) for d in dD):
        raise ValueError(
            f"{type(model).__name__}: `diffusion` depends on the time or the state; truncated "
            "Wigner is implemented for additive (constant) noise only."
        )
    return _SparseMatrix.from_dense(_sqrt_psd(D, "model.diffusion"))


def _counter_bits(keys, block, n_words) -> Array:
    """(n_words, c) random 32-bit words of noise block ``block`` for c trajectories: the
    Threefry-2x32 hash that drives ``jax.random``, in counter mode — counter (block, w) under
    each trajectory's 64-bit key ``keys`` (2, c) — evaluated for all trajectories at once."""
    shape = (-(-n_words // 2), keys.shape[1])
    counter = (jnp.broadcast_to(block.astype(jnp.uint32), shape),
               jnp.broadcast_to(jnp.arange(shape[0], dtype=jnp.uint32)[:, None], shape))
    words = threefry2x32_p.bind(*(jnp.broadcast_to(k, shape) for k in keys), *counter)
    return jnp.concatenate(words)[:n_words]


def _standard_normals(bits: Array) -> Array:
    """Standard normal numbers (float64) from random 32-bit words, 23 bits each:
    z = √2 erf⁻¹(u) in float32, u = (m + ½)·2⁻²² − 1 for m = bits >> 9 ∈ [0, 2²³) — a grid
    symmetric about 0, so that the distribution is exactly symmetric (module docstring)."""
    m = (bits >> 9).astype(jnp.float32)
    u = (m + 0.5) * 2.0**-22 - 1.0
    return (np.sqrt(2.0).astype(np.float32) * jax.lax.erf_inv(u)).astype(float)


def _five_point(words: Array) -> Array:
    """(10·W, …) five-point numbers ξ from (W, …) random 32-bit words, ten 3-bit codes each:
    ξ = 0 with probability ½, ±√(2 − √2) and ±√(2 + √2) with ⅛ each — E ξ = E ξ³ = E ξ⁵ = 0,
    E ξ² = 1, E ξ⁴ = 3, the moments of a standard normal number up to the fifth."""
    shifts = (3 * jnp.arange(10, dtype=jnp.uint32)).reshape(10, *([1] * words.ndim))
    code = (words[None] >> shifts) & 7
    # |ξ| by the upper two bits of the code (0, 0, √(2 − √2), √(2 + √2)); the lowest: the sign
    size = jnp.where(code >= 6, np.sqrt(2.0 + np.sqrt(2.0)),
                     jnp.where(code >= 4, np.sqrt(2.0 - np.sqrt(2.0)), 0.0))
    return jnp.where((code & 1) == 1, -size, size).reshape(-1, *words.shape[1:])


def _heun(drift, dt):
    """One stochastic Heun step of every trajectory: (U, t, noise = BΔW) -> U', columns of
    U (2n, c) the trajectories."""

    def step(u, t, noise):
        f0 = drift(t, u)
        guess = u + f0 * dt + noise
        return u + 0.5 * (f0 + drift(t + dt, guess)) * dt + noise

    return step


# --------------------------------------------------------------------------- statistics


class _Moments(eqx.Module):
    """Per-group count n, mean m, centred second moments M2 = Σ(u − m)(u − m)ᵀ, and sums s of
    per-trajectory observables; leading axes are (…, G)."""

    n: Array
    m: Array
    m2: Array
    s: Array


def _merge(parts: _Moments, axis: int = 0) -> _Moments:
    """Combine the moments stacked along ``axis`` exactly (Chan et al.'s formula, k parts)."""
    n = jnp.sum(parts.n, axis)
    w = parts.n / jnp.maximum(jnp.expand_dims(n, axis), 1)
    m = jnp.sum(w[..., None] * parts.m, axis)
    d = parts.m - jnp.expand_dims(m, axis)
    m2 = jnp.sum(parts.m2 + parts.n[..., None, None] * d[..., :, None] * d[..., None, :], axis)
    return _Moments(n=n, m=m, m2=m2, s=jnp.sum(parts.s, axis))


@eqx.filter_jit
def _merge_two(a: _Moments, b: _Moments) -> _Moments:
    return _merge(jax.tree_util.tree_map(lambda x, y: jnp.stack([x, y]), a, b))


def _without(total: _Moments, part: _Moments) -> _Moments:
    """The moments of ``total`` minus those of ``part`` (the inverse of :func:`_merge`)."""
    n = total.n - part.n
    m = (total.n[..., None] * total.m - part.n[..., None] * part.m) / n[..., None]
    d = part.m - m
    m2 = total.m2 - part.m2 - (n * part.n / total.n)[..., None, None] * d[..., :, None] * d[
        ..., None, :]
    return _Moments(n=n, m=m, m2=m2, s=total.s - part.s)


def _relative_phase(u, pairs):
    """(c, P) cos Δφ and sin Δφ of each trajectory, Δφ = φ_i − φ_j, φ = atan2(p, x)."""
    i, j = (np.array([p[k] for p in pairs]) for k in (0, 1))
    xi, pi, xj, pj = u[:, 2 * i], u[:, 2 * i + 1], u[:, 2 * j], u[:, 2 * j + 1]
    re, im = xi * xj + pi * pj, pi * xj - xi * pj
    r = jnp.hypot(re, im)
    safe = jnp.where(r > 0, r, 1.0)
    return jnp.where(r > 0, re / safe, 1.0), jnp.where(r > 0, im / safe, 0.0)


def _observables(u, save: WignerSave):
    """(c, K) per-trajectory observables whose group sums are kept."""
    if not save.pairs:
        return jnp.zeros((u.shape[0], 0), u.dtype)
    cos, sin = _relative_phase(u, save.pairs)
    out = [cos, sin]
    if save.phase_bins:
        angle = jnp.arctan2(sin, cos)
        b = jnp.floor((angle + jnp.pi) / (2 * jnp.pi) * save.phase_bins).astype(jnp.int32)
        b = jnp.clip(b, 0, save.phase_bins - 1)
        onehot = b[..., None] == jnp.arange(save.phase_bins, dtype=jnp.int32)
        out.append(onehot.astype(u.dtype).reshape(u.shape[0], -1))
    return jnp.concatenate(out, axis=-1)


def _group_moments(u, valid, n_groups, save) -> _Moments:
    """Moments of trajectory rows r of ``u`` (c, 2n) in groups r mod G (c a multiple of G)."""
    c, dim = u.shape
    h = _observables(u, save)
    grouped = lambda x: x.reshape(c // n_groups, n_groups, *x.shape[1:])  # noqa: E731
    w = grouped(valid)
    u_g = jnp.where(w[..., None], grouped(u), 0.0)
    n = jnp.sum(w, 0).astype(u.dtype)
    m = jnp.sum(u_g, 0) / jnp.maximum(n, 1.0)[:, None]
    d = jnp.where(w[..., None], u_g - m, 0.0)
    m2 = jnp.einsum("kgi,kgj->gij", d, d)
    s = jnp.sum(jnp.where(w[..., None], grouped(h), 0.0), 0)
    return _Moments(n=n, m=m, m2=m2, s=s)


# --------------------------------------------------------------------------- one chunk


@eqx.filter_jit
def _run_chunk(drift, mesh, state_sqrt, B, key, index, n_total, dt, t0, save_steps, n_groups,
               save, increments):
    """Trajectories ``index`` (sharded over ``mesh``): merged group moments at every save time,
    (T, G, …), and the trajectories when ``save.trajectories``. Inside, the state is U (2n, c):
    one row per quadrature, the trajectories along the fast axis."""
    dyn_drift, static_drift = eqx.partition(drift, eqx.is_array)

    def local(dyn_drift, state_sqrt, B, key, index):
        drift = eqx.combine(dyn_drift, static_drift)
        mean0, L = state_sqrt
        dim = mean0.shape[0]
        valid = index < n_total
        keys = jax.vmap(lambda k: jr.split(jr.fold_in(key, k)))(index)
        init_keys = keys[:, 0]
        path_keys = jax.vmap(lambda k: jr.bits(k, (2,), jnp.uint32), out_axes=1)(keys[:, 1])
        u0 = mean0[:, None] + L @ jax.vmap(
            lambda k: jr.normal(k, (dim,), mean0.dtype), out_axes=1)(init_keys)
        step = _heun(drift, dt)
        K = _NOISE_BLOCK

        def draw(b):
            """Increments BΔW of steps bK … bK + K − 1 of every trajectory: (K, 2n, c)."""
            if increments == "gaussian":
                z = _standard_normals(_counter_bits(path_keys, b, dim * K))
            else:
                z = _five_point(_counter_bits(path_keys, b, -(-dim * K // 10)))[: dim * K]
            z = z.reshape(dim, K, -1)  # (2n, K, c)
            z = jnp.sqrt(dt) * z
            return _stack_rows(B.rows(z), z, axis=1)

        def block(carry, end):
            """Steps s … min(end, next block boundary) − 1; a new block is drawn at its start.
            A whole block is a scan of fixed length K; a part of one (at a save time) a loop."""
            u, s, noise = carry
            noise = jax.lax.cond(s % K == 0, lambda: draw(s // K), lambda: noise)
            stop = jnp.minimum(end, (s // K + 1) * K)
            t = lambda i: t0 + i.astype(dt.dtype) * dt  # noqa: E731
            u = jax.lax.cond(
                stop - s == K,
                lambda u: jax.lax.scan(lambda u, x: (step(u, t(s + x[0]), x[1]), None), u,
                                       (jnp.arange(K, dtype=s.dtype), noise))[0],
                lambda u: jax.lax.fori_loop(s, stop, lambda i, u: step(u, t(i), noise[i % K]),
                                            u),
                u,
            )
            return u, stop, noise

        def interval(carry, n_steps):
            end = carry[1] + n_steps
            carry = jax.lax.while_loop(lambda c: c[1] < end, lambda c: block(c, end), carry)
            u = carry[0].T
            return carry, (_group_moments(u, valid, n_groups, save),
                           u if save.trajectories else None)

        noise = jnp.zeros((K, *u0.shape), u0.dtype)
        _, (moments, us) = jax.lax.scan(
            interval, (u0, jnp.zeros((), jnp.int32), noise), save_steps)
        moments = jax.tree_util.tree_map(lambda x: x[None], moments)
        return moments, us

    spec, replicated = PartitionSpec(_AXIS), PartitionSpec()
    paths_spec = PartitionSpec(None, _AXIS) if save.trajectories else None
    moments, us = jax.shard_map(
        local, mesh=mesh, in_specs=(replicated,) * 4 + (spec,), out_specs=(spec, paths_spec),
        check_vma=False,
    )(dyn_drift, state_sqrt, B, key, index)
    return _merge(moments, axis=0), us


# --------------------------------------------------------------------------- estimates


def _estimates(total: _Moments, save: WignerSave) -> dict:
    """Every estimate from the moments of all trajectories (leading axis T)."""
    cov = total.m2 / (total.n - 1.0)[..., None, None]
    out = {"mean": total.m, "cov": cov}
    if not save.pairs:
        return out
    state = GaussianState(mean=total.m, cov=cov)
    p = len(save.pairs)
    mean_s = total.s / total.n[..., None]
    cos, sin = mean_s[..., :p], mean_s[..., p : 2 * p]
    out |= {
        "complete_sync": jnp.stack([complete_sync(state, i, j) for i, j in save.pairs], -1),
        "complete_sync_absolute": jnp.stack(
            [complete_sync(state, i, j, relative=False) for i, j in save.pairs], -1),
        "phase_sync": jnp.stack([phase_sync(state, i, j) for i, j in save.pairs], -1),
        "phase_cos": cos,
        "phase_sin": sin,
        "phase_locking": jnp.hypot(cos, sin),
        "phase_difference": jnp.arctan2(sin, cos),
    }
    if save.phase_bins:
        counts = mean_s[..., 2 * p :].reshape(*mean_s.shape[:-1], p, save.phase_bins)
        out["phase_histogram"] = counts * save.phase_bins / (2 * jnp.pi)
    return out


@eqx.filter_jit
def _jackknife(groups: _Moments, save: WignerSave):
    """Estimates from all groups and their delete-one-group jackknife standard errors.

    ``groups`` has leading axes (T, G)."""
    total = _merge(groups, axis=1)
    value = _estimates(total, save)
    g = groups.n.shape[1]
    loo = jax.vmap(lambda part: _estimates(_without(total, part), save))(
        jax.tree_util.tree_map(lambda x: jnp.moveaxis(x, 1, 0), groups))

    def stderr(name, full, replicas):
        d = replicas - full
        if name == "phase_difference":
            d = jnp.arctan2(jnp.sin(d), jnp.cos(d))
        d = d - jnp.mean(d, 0)
        return jnp.sqrt((g - 1) / g * jnp.sum(d**2, 0))

    return value, {k: stderr(k, value[k], loo[k]) for k in value}


# --------------------------------------------------------------------------- entry point


def _positive_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer ≥ {minimum}; got {value!r}.")
    return int(value)


def _check_key(key):
    if not isinstance(key, jax.Array):
        raise ValueError(f"`key` must be a JAX PRNG key (jax.random.key(seed)); got {key!r}.")
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"`key` must be a single PRNG key; got shape {key.shape}.")
        return key
    if key.dtype != jnp.uint32 or key.shape != (2,):
        raise ValueError(
            f"`key` must be a JAX PRNG key (jax.random.key(seed)); got dtype {key.dtype}, "
            f"shape {key.shape}."
        )
    return jr.wrap_key_data(key)


def _save_steps(ts, t0, dt) -> np.ndarray:
    """Steps before each save time; ``ValueError`` unless ``ts`` lies on the grid t0 + k·dt."""
    k = (np.asarray(ts, float) - float(t0)) / dt
    steps = np.rint(k)
    if np.any(np.abs(k - steps) > _GRID_TOL * np.maximum(1.0, steps)):
        bad = np.asarray(ts)[np.abs(k - steps) > _GRID_TOL * np.maximum(1.0, steps)]
        raise ValueError(
            f"`ts` must lie on the step grid t0 + k·dt (t0 = {float(t0)}, dt = {dt}); "
            f"{bad[:5]} do not. Choose dt dividing the save intervals."
        )
    return np.diff(steps, prepend=0.0).astype(np.int32)


def wigner_ensemble(
    model: AbstractGaussianModel,
    ts: Float[Array, " T"],
    n_trajectories: int,
    key: PRNGKeyArray,
    *,
    state0: GaussianState | None = None,
    t0: float = 0.0,
    dt: float = 0.01,
    save: WignerSave = WignerSave(),
    chunk_size: int | None = None,
    n_groups: int = 32,
    devices: Sequence[jax.Device] | None = None,
    increments: str = "gaussian",
    throw: bool = True,
) -> WignerEnsemble:
    r"""Truncated-Wigner ensemble of ``model``: sampled nonlinear dynamics, streamed statistics.

    Integrates du = F(t, u)dt + B dW (module docstring: F = f − ¼∇²f the Weyl-ordered mean
    field, BBᵀ = D the model's diffusion) for ``n_trajectories`` samples of the initial Wigner
    function, and returns ensemble estimates ± standard errors at the save times.

    **Main arguments:**

    - ``model``: a :class:`qsync_jax.AbstractGaussianModel` whose mean field is at most
      quadratic in the quadratures and whose diffusion is constant (all dense models of the
      library; a Bloch ring is refused — each trajectory needs the full vector field: sample
      ``ring.to_network()``).
    - ``ts``: strictly increasing save times ≥ ``t0``, on the grid t0 + k·dt.
    - ``n_trajectories``: number of samples N ≥ 4 (standard errors need two groups of two).
    - ``key``: a JAX PRNG key (``jax.random.key(seed)``); the result is a function of ``key``
      and N only.

    **Other arguments:**

    - ``state0``: initial ``GaussianState`` (any positive semidefinite covariance); default
      ``model.initial_state()`` (vacuum/thermal). Coherent, squeezed, … states are Gaussian.
    - ``t0``: initial time. ``dt``: the fixed step (> 0). The discretization error of ensemble
      averages is O(dt²) for linear models; check by halving ``dt``.
    - ``save``: a :class:`WignerSave` (pairs for S_c, S_p and phase statistics, a phase
      histogram, the trajectories themselves).
    - ``chunk_size``: trajectories integrated at once (memory: ~chunk · 2n floats per stage);
      rounded up to a multiple of ``n_groups`` × devices. Default: 1024 per device on CPUs,
      65536 on accelerators.
    - ``n_groups``: G, the groups of the jackknife (standard errors carry a relative
      uncertainty ≈ 1/√(2(G − 1))); capped at N/2.
    - ``devices``: devices every chunk is split over; default ``jax.devices()`` (on CPUs call
      :func:`qsync_jax.use_cpu_devices` first to make every core a device).
    - ``increments``: ``"gaussian"`` (default): ΔW = √dt z with standard normal z;
      ``"five_point"``: z replaced by five-point numbers with the same moments up to the fifth
      (module docstring) — the same weak order 2 for every ensemble average at a fraction of the
      cost, but the trajectories are no longer Brownian paths (use ``"gaussian"`` for those).
    - ``throw``: raise if a trajectory became non-finite (default); with ``throw=False`` the
      result has ``status`` ``diverged`` and NaN estimates instead.

    Raises ``ValueError`` before any work for bad arguments (naming them). The function runs
    its own loop over chunks on the host: call it directly, not under ``jit``/``vmap`` or inside
    :func:`qsync_jax.sweep` (loop over parameter values instead; each chunk is already batched).
    """
    ts = jnp.asarray(ts)
    _check_times("ts", ts, t0)
    n_trajectories = _positive_int("n_trajectories", n_trajectories, 4)
    n_groups = min(_positive_int("n_groups", n_groups, 2), n_trajectories // 2)
    if isinstance(dt, bool) or not (np.ndim(dt) == 0 and np.isfinite(dt) and dt > 0):
        raise ValueError(f"`dt` must be a finite number > 0; got {dt!r}.")
    dt = float(dt)
    if chunk_size is not None:
        chunk_size = _positive_int("chunk_size", chunk_size, 1)
    if not isinstance(save, WignerSave):
        raise ValueError(f"`save` must be a qsync_jax.WignerSave; got {save!r}.")
    if not (isinstance(increments, str) and increments in ("gaussian", "five_point")):
        raise ValueError(f"`increments` must be 'gaussian' or 'five_point'; got {increments!r}.")
    key = _check_key(key)
    devices = check_devices(devices)
    _check_model_type(model)
    state0 = model.initial_state() if state0 is None else state0
    if not isinstance(state0, GaussianState):
        raise ValueError(f"`state0` must be a GaussianState; got {type(state0).__name__}.")
    model.check_state(state0, "state0")  # a sampling distribution: PSD (below), no more
    n = model.n_modes
    for i, j in save.pairs:
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"`save.pairs` must index modes in [0, {n}); got ({i}, {j}).")
    mean0 = jnp.asarray(state0.mean, float)
    state_sqrt = (mean0, _sqrt_psd(state0.cov, "state0.cov"))
    B = _check_model(model, t0, mean0)
    drift = _wigner_drift(model, t0)
    save_steps = _save_steps(ts, t0, dt)

    n_dev = len(devices)
    if chunk_size is None:
        per_device = _PER_DEVICE.get(devices[0].platform, _PER_ACCELERATOR)
    else:
        per_device = -(-chunk_size // n_dev)
    per_device = min(per_device, -(-n_trajectories // n_dev))
    per_device = -(-per_device // n_groups) * n_groups  # groups align with chunk boundaries
    chunk = per_device * n_dev
    mesh = Mesh(np.asarray(devices), (_AXIS,))
    args = (jnp.asarray(n_trajectories), jnp.asarray(dt), jnp.asarray(t0, float),
            jnp.asarray(save_steps))
    groups, paths = None, []
    for lo in range(0, n_trajectories, chunk):
        index = jnp.arange(lo, lo + chunk, dtype=jnp.int32)
        moments, us = _run_chunk(drift, mesh, state_sqrt, B, key, index, *args, n_groups, save,
                                 increments)
        groups = moments if groups is None else _merge_two(groups, moments)
        if save.trajectories:
            paths.append(np.asarray(us)[:, : min(chunk, n_trajectories - lo)])
    value, stderr = _jackknife(groups, save)

    status = mark_nonfinite(Status.success, (groups.m, groups.m2))
    failed = status != Status.success
    nan = lambda x: jnp.where(failed, jnp.nan, x)  # noqa: E731
    value, stderr = jax.tree_util.tree_map(nan, (value, stderr))
    if throw and bool(failed):
        raise RuntimeError(
            f"wigner_ensemble: {status_message(status)} (a trajectory "
            "became non-finite; reduce `dt` or check the parameters, or pass throw=False)."
        )
    edges = None
    if save.phase_bins:
        edges = jnp.linspace(-jnp.pi, jnp.pi, save.phase_bins + 1)
    trajectories = np.concatenate(paths, axis=1).swapaxes(0, 1) if save.trajectories else None
    mean, cov = value.pop("mean"), value.pop("cov")
    mean_se, cov_se = stderr.pop("mean"), stderr.pop("cov")
    return WignerEnsemble(
        ts=ts.astype(float), mean=mean, cov=cov, mean_stderr=mean_se, cov_stderr=cov_se,
        measures=value, measures_stderr=stderr, phase_bin_edges=edges,
        trajectories=None if trajectories is None else jnp.asarray(trajectories),
        status=status, num_steps=jnp.asarray(int(save_steps.sum())),
        n_trajectories=n_trajectories, dt=dt, n_groups=n_groups,
    )
