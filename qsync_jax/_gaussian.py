r"""Gaussian states of n bosonic modes.

Conventions (used throughout qsync_jax; every other docstring refers here):

- ħ = 1. Quadratures x = (a + a†)/√2, p = (a − a†)/(i√2), so [x, p] = i.
- The quadrature vector is ordered **xpxp**: u = (x₁, p₁, x₂, p₂, …).
- Mean d_i = ⟨u_i⟩; covariance C_ij = ½⟨{u_i, u_j}⟩ − ⟨u_i⟩⟨u_j⟩. The vacuum has C = ½·I.
- A covariance is physical iff C + iΩ/2 ⪰ 0, with Ω = ⊕ [[0, 1], [−1, 0]] the symplectic form.
- Networks order modes site-major: site j has cavity mode 2j and mechanical mode 2j+1.
- Logarithms are natural.

Quantities (functions below take a covariance ``cov`` of shape (..., 2n, 2n) or a
:class:`GaussianState`; leading axes are batch axes):

- Symplectic eigenvalues ν_k (moduli of the eigenvalues of iΩC), ν_k ≥ ½ for physical states and
  all ν_k = ½ for pure ones. A thermal mode with occupation n̄ has ν = n̄ + ½.
- Purity μ = tr ρ² = 1/√det(2C); Rényi-2 entropy S₂ = −ln μ = ½ ln det(2C).
- von Neumann entropy S = Σ_k f(ν_k), f(ν) = (ν+½) ln(ν+½) − (ν−½) ln(ν−½); thermal mode:
  S = (n̄+1) ln(n̄+1) − n̄ ln n̄.
- Modes are addressed by tuples of indices (an int means one mode); a bipartition ``a | b``
  defaults to mode 0 | mode 1, modes outside a ∪ b are traced out.

Differentiability. Every function works under ``jax.jit``, ``jax.vmap`` and ``jax.grad``; at the
points where the exact derivative is infinite or undefined the choices are:

- Degenerate symplectic spectra: for n = 1, ν = √det C; for n ≥ 2, ν are the positive eigenvalues
  of the Hermitian matrix i Lᵀ Ω L with C = L Lᵀ (Cholesky). Eigenvalue derivatives of a Hermitian
  matrix are finite at degeneracies, and exact for the symmetric functions of ν computed here.
  (The two-mode closed form ν±² = (Δ ± √(Δ² − 4 det C))/2 is not used: every pure two-mode state
  is degenerate, where that square root turns rounding errors ε into √ε ≈ 1e−8.)
- Pure states: f'(ν) → +∞ as ν → ½⁺. The term (ν−½) ln(ν−½) is evaluated as
  (ν−½) ln max(ν−½, δ) with δ = 1e−12: the value changes by at most δ/e, stays continuous, and
  f'(½) = 1 − ln δ ≈ 28.6 is finite — a steep slope, the same for ν rounded to either side of ½.
- Separable states: the log-negativity sums −ln 2ν̃ over ν̃ < ½ only; at ν̃ = ½ its derivative is
  taken from the separable side (zero).
- Gaussian discord: the optimal measurement is held fixed when differentiating (envelope theorem,
  see ``_measured_b``); where the optimum is degenerate (pure states) the derivatives of the tied
  candidates are averaged.

Input checks and unphysical input. Public functions check shapes always (``cov`` of shape
(..., 2n, 2n), mode indices in range and disjoint) and, when values are concrete (not under
``jit``/``vmap`` tracing), that ``cov`` is finite and symmetric (max|C − Cᵀ| ≤ 1e−8·max(1, max|C|));
they raise ``ValueError`` naming the argument and its shape before computing anything. They do
not test physicality — :func:`is_physical` does, returning False (it never raises on values).
:func:`symplectic_eigenvalues` returns the ν it computes (ν < ½ flags an unphysical input); the
entropies, purity, mutual information, log-negativity and discord are NaN for covariances that
are indefinite or violate ν ≥ ½ beyond rounding (below), and NaN propagates, never becoming 0.

Precision. C's entries carry rounding errors of order δ = 100·2n·ε·λ_max(C) (ε the dtype's
machine epsilon; the margin covers the rounding of the computation that produced C); at large
squeezing (λ_max/λ_min = e^{4r} for a two-mode squeezed state) this hides the smallest eigenvalues,
so that quantities close to the physical bounds are not resolved:

- A symplectic eigenvalue (or the discord's √E, the conditional ν) within δ·√(λ_max/λ_min) of ½
  is taken as ½ in the entropies and the discord (its derivative kept): pure states give S = 0
  and purity 1, not ±10⁻³ at r = 8.
- S₂ = ½ Σₖ ln 2λₖ (eigenvalues of C) is 0 where det 2C cannot be told from its physical minimum
  1 within the rounding of the λₖ (each λₖ ± δ), and NaN where C is indefinite beyond δ or
  det 2C < 1 beyond rounding. The purity is e^{−S₂}.
- The two-mode log-negativity uses ν̃₋ = √det C / ν̃₊: −ln 2ν̃₋ = ln 2ν̃₊ − S₂(C), with the
  well-conditioned ν̃₊² = (Δ̃ + √(Δ̃² − 4 det C))/2, Δ̃ = det A + det B − 2 det X. It stays exact
  for two-mode squeezed vacua of any r (E_N = 2r; at r = 10 the entries no longer resolve det C,
  and the state is taken as pure, the largest E_N consistent with them). von Neumann quantities
  need the Cholesky factor of C and are NaN once C is singular in floating point (r ≳ 9).
- f(ν) is evaluated as ln(ν+½) + (ν−½)(ln(ν+½) − ln(ν−½)), without cancellation at large ν.
"""

import functools
import math
import operator
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from ._summary import Summary

_LOG_FLOOR = 1e-12  # δ of the module docstring: (ν−½) ln(ν−½) → (ν−½) ln max(ν−½, δ)
_ROUNDING = 100.0  # c of the rounding scale δ = c·2n·ε·λ_max (module docstring, "Precision")
_SYM_RTOL = 1e-8  # symmetry tolerance of the input checks, relative to max(1, max|C|)
_KINDS = ("von_neumann", "renyi2")

Modes = int | Sequence[int]


class GaussianState(Summary):
    """Mean (..., 2n) and covariance (..., 2n, 2n) of a Gaussian state; leading batch axes allowed.

    Construction does no checks (the class is also the state that ODE solvers integrate and that
    ``jax.tree_util`` maps over); the constructors and functions of this module check their input.
    """

    mean: Float[Array, "*batch 2n"]
    cov: Float[Array, "*batch 2n 2n"]

    @property
    def n_modes(self) -> int:
        return self.cov.shape[-1] // 2

    def reduce(self, modes: Modes) -> "GaussianState":
        """The state of ``modes`` alone (see :func:`reduce`)."""
        return reduce(self, modes)


# ----------------------------------------------------------------------------------- input checks


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _as_real(x: ArrayLike, name: str) -> Array:
    """``x`` as a real floating array; ``TypeError``/``ValueError`` naming ``name`` if it is not."""
    try:
        x = jnp.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers; got {x!r}") from None
    if jnp.iscomplexobj(x):
        raise ValueError(f"{name} must be real; got dtype {x.dtype} with shape {x.shape}")
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


def _check_finite(x: Array, name: str) -> None:
    if _is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} (shape {x.shape}) has non-finite entries")


def _as_cov(cov, name: str = "cov", *, check_values: bool = True) -> Array:
    """The covariance array of ``cov`` (array or GaussianState), checked (module docstring)."""
    if isinstance(cov, GaussianState):
        cov = cov.cov
    cov = _as_real(cov, name)
    shape = cov.shape
    if cov.ndim < 2 or shape[-1] != shape[-2] or shape[-1] % 2 or shape[-1] == 0:
        raise ValueError(f"{name} must have shape (..., 2n, 2n) with n ≥ 1; got shape {shape}")
    if check_values and _is_concrete(cov):
        _check_finite(cov, name)
        c = np.asarray(cov)
        asym = float(np.max(np.abs(c - np.swapaxes(c, -1, -2))))
        if asym > _SYM_RTOL * max(1.0, float(np.max(np.abs(c)))):
            raise ValueError(f"{name} (shape {shape}) is not symmetric: max|C − Cᵀ| = {asym:.3g}")
    return cov


def _as_state(state, name: str = "state") -> GaussianState:
    if not isinstance(state, GaussianState):
        raise ValueError(f"{name} must be a GaussianState; got {type(state).__name__}")
    cov = _as_cov(state.cov, f"{name}.cov")
    mean = _as_real(state.mean, f"{name}.mean")
    if mean.shape != cov.shape[:-1]:
        raise ValueError(
            f"{name}.mean must have shape {cov.shape[:-1]} to match {name}.cov of shape "
            f"{cov.shape}; got shape {mean.shape}"
        )
    _check_finite(mean, f"{name}.mean")
    return GaussianState(mean=mean, cov=cov)


def _as_modes(modes: Modes, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    n = shape[-1] // 2
    try:
        modes = (operator.index(modes),) if not isinstance(modes, Sequence) else modes
        modes = tuple(operator.index(m) for m in modes)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of mode indices; got {modes!r}") from None
    if not modes or len(set(modes)) != len(modes) or not all(0 <= m < n for m in modes):
        raise ValueError(
            f"{name} = {modes} must be distinct mode indices in 0..{n - 1} "
            f"(cov has shape {shape}, n = {n} modes)"
        )
    return modes


def _bipartition(cov: Array, a: Modes, b: Modes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    a, b = _as_modes(a, "a", cov.shape), _as_modes(b, "b", cov.shape)
    if set(a) & set(b):
        raise ValueError(f"a = {a} and b = {b} overlap (cov has shape {cov.shape})")
    return a, b


def _check_n_modes(n) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")


def _as_occupations(n_th: ArrayLike) -> Array:
    n_th = _as_real(n_th, "n_th")
    _check_finite(n_th, "n_th")
    if _is_concrete(n_th) and not np.all(np.asarray(n_th) >= 0):
        raise ValueError(f"n_th (shape {n_th.shape}) must be ≥ 0")
    return n_th


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}; got {kind!r}")


# ----------------------------------------------------------------------------------- constructors


def vacuum(n: int) -> GaussianState:
    """Vacuum of ``n`` modes: zero mean, covariance ½·I."""
    _check_n_modes(n)
    return GaussianState(mean=jnp.zeros(2 * n), cov=0.5 * jnp.eye(2 * n))


def thermal(n_th: Float[ArrayLike, "*batch n"]) -> GaussianState:
    """Product of thermal states with occupations ``n_th`` (one per mode; a scalar is one mode).

    Covariance diag(n̄₁ + ½, n̄₁ + ½, n̄₂ + ½, …); zero mean. Batch axes lead.
    """
    n_th = jnp.atleast_1d(_as_occupations(n_th))
    var = jnp.repeat(n_th + 0.5, 2, axis=-1)
    return GaussianState(mean=jnp.zeros_like(var), cov=var[..., None, :] * jnp.eye(var.shape[-1]))


def coherent(alpha: ArrayLike) -> GaussianState:
    """Coherent states |α₁⟩⊗|α₂⟩⊗… (``alpha``: complex amplitudes ⟨a_k⟩, shape (..., n)).

    Mean (x_k, p_k) = (√2 Re α_k, √2 Im α_k); covariance ½·I.
    """
    try:
        alpha = jnp.atleast_1d(jnp.asarray(alpha))
    except (TypeError, ValueError):
        raise TypeError(f"alpha must be an array of complex numbers; got {alpha!r}") from None
    if not jnp.issubdtype(alpha.dtype, jnp.inexact):
        alpha = alpha.astype(float)
    _check_finite(alpha, "alpha")
    mean = math.sqrt(2.0) * jnp.stack([jnp.real(alpha), jnp.imag(alpha)], axis=-1)
    mean = mean.reshape(*alpha.shape[:-1], 2 * alpha.shape[-1])
    eye = jnp.eye(mean.shape[-1], dtype=mean.dtype)
    return GaussianState(mean=mean, cov=jnp.broadcast_to(0.5 * eye, (*mean.shape, mean.shape[-1])))


def two_mode_squeezed(
    r: Float[ArrayLike, "*batch"], n_th: Float[ArrayLike, "*batch"] = 0.0
) -> GaussianState:
    """Two-mode squeezed thermal state: the two-mode squeezer S(r) applied to thermal(n̄, n̄).

    C = (n̄ + ½) [[cosh 2r·I, sinh 2r·Z], [sinh 2r·Z, cosh 2r·I]], Z = diag(1, −1), so that
    x₁ − x₂ and p₁ + p₂ are squeezed; n̄ = 0 gives the two-mode squeezed vacuum, with
    log-negativity 2r and entanglement entropy f(cosh(2r)/2). ``r`` and ``n_th`` broadcast.
    """
    r, n_th = _as_real(r, "r"), _as_occupations(n_th)
    _check_finite(r, "r")
    r, n_th = jnp.broadcast_arrays(r, n_th)
    ch, sh = jnp.cosh(2 * r)[..., None, None], jnp.sinh(2 * r)[..., None, None]
    z = jnp.diag(jnp.asarray([1.0, -1.0], dtype=ch.dtype))
    k = jnp.kron(jnp.asarray([[0.0, 1.0], [1.0, 0.0]], dtype=ch.dtype), z)
    cov = (n_th + 0.5)[..., None, None] * (ch * jnp.eye(4, dtype=ch.dtype) + sh * k)
    return GaussianState(mean=jnp.zeros(cov.shape[:-1], dtype=cov.dtype), cov=cov)


# ------------------------------------------------------------------------------- basic operations


def symplectic_form(n: int, dtype=None) -> Float[Array, "2n 2n"]:
    """Ω = ⊕ₖ [[0, 1], [−1, 0]] for n modes (xpxp ordering), so that [u_i, u_j] = i Ω_ij."""
    _check_n_modes(n)
    block = jnp.array([[0.0, 1.0], [-1.0, 0.0]], dtype=dtype)
    return jnp.kron(jnp.eye(n, dtype=block.dtype), block)


def _mode_indices(modes: tuple[int, ...]) -> np.ndarray:
    return np.array([[2 * m, 2 * m + 1] for m in modes]).ravel()


def _reduce_cov(cov: Array, modes: tuple[int, ...]) -> Array:
    idx = _mode_indices(modes)
    return cov[..., idx, :][..., :, idx]


def reduce(state: GaussianState | ArrayLike, modes: Modes):
    """Reduction of a state (or covariance) to ``modes``, in the order given.

    Tracing out the other modes of a Gaussian state keeps the rows and columns of the retained
    quadratures: returns a :class:`GaussianState` for a state, a covariance for a covariance.
    """
    if isinstance(state, GaussianState):
        state = _as_state(state)
        modes = _as_modes(modes, "modes", state.cov.shape)
        mean = state.mean[..., _mode_indices(modes)]
        return GaussianState(mean=mean, cov=_reduce_cov(state.cov, modes))
    cov = _as_cov(state, "state")
    return _reduce_cov(cov, _as_modes(modes, "modes", cov.shape))


def _det2(m: Array) -> Array:
    return m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]


def _safe_sqrt(x: Array) -> Array:
    """√x for x > 0, and 0 with zero derivative for x ≤ 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


@jax.jit
def _symplectic_eigenvalues(cov: Array) -> Array:
    n = cov.shape[-1] // 2
    if n == 1:
        return jnp.sqrt(_det2(cov))[..., None]
    chol = jnp.linalg.cholesky(cov)
    m = jnp.swapaxes(chol, -1, -2) @ symplectic_form(n, cov.dtype) @ chol  # real antisymmetric
    return jnp.linalg.eigvalsh(jax.lax.complex(jnp.zeros_like(m), m))[..., n:]


def symplectic_eigenvalues(cov: Float[ArrayLike, "*batch 2n 2n"]) -> Float[Array, "*batch n"]:
    """Symplectic eigenvalues ν₁ ≤ … ≤ νₙ of ``cov`` (ascending; vacuum → ½).

    By Williamson's theorem C = S diag(ν₁, ν₁, …, νₙ, νₙ) Sᵀ with S symplectic; ν are the moduli
    of the eigenvalues of iΩC. Computed as √det C for one mode and from the Cholesky factor for
    more (module docstring, "Differentiability"); the latter needs C positive definite, as every
    physical covariance is.
    """
    return _symplectic_eigenvalues(_as_cov(cov))


def is_physical(cov: Float[ArrayLike, "*batch 2n 2n"], tol: float = 1e-9) -> Bool[Array, "*batch"]:
    """Whether ``cov`` is a physical covariance: C = Cᵀ finite and C + iΩ/2 ⪰ 0 within ``tol``.

    The criterion is λ_min(C + iΩ/2) ≥ −tol·(1 + max|C|) and max|C − Cᵀ| ≤ tol·(1 + max|C|).
    Non-finite, non-symmetric or uncertainty-violating matrices give False; only wrong shapes
    raise. Returns a bool array with the batch shape of ``cov``.
    """
    return _is_physical(_as_cov(cov, check_values=False), tol)


@jax.jit
def _is_physical(cov: Array, tol: Array) -> Array:
    scale = 1.0 + jnp.max(jnp.abs(cov), axis=(-2, -1))
    sym = jnp.max(jnp.abs(cov - jnp.swapaxes(cov, -1, -2)), axis=(-2, -1)) <= tol * scale
    finite = jnp.all(jnp.isfinite(cov), axis=(-2, -1))
    return finite & sym & (uncertainty_margin(cov) >= -tol * scale)


def uncertainty_margin(cov: Array) -> Array:
    """λ_min(C + iΩ/2), ≥ 0 iff C satisfies the uncertainty relation; C real symmetric or complex
    Hermitian (Bloch blocks of a ring), leading axes are batch axes (no input checks)."""
    half_omega = 0.5 * symplectic_form(cov.shape[-1] // 2, jnp.real(cov).dtype)
    shift = jax.lax.complex(jnp.zeros_like(half_omega), half_omega)
    return jnp.linalg.eigvalsh(cov.astype(shift.dtype) + shift)[..., 0]


# --------------------------------------------------------------------------------------- entropies


def _f(nu: Array) -> Array:
    """f(ν) = ln(ν+½) + (ν−½) ln((ν+½)/max(ν−½, δ)): the module docstring's f ("Differentiability"),
    written without the cancellation of two terms ~ν ln ν at large ν."""
    y = nu - 0.5
    return jnp.log(nu + 0.5) + y * (jnp.log(nu + 0.5) - jnp.log(jnp.maximum(y, _LOG_FLOOR)))


def _rounding(cov: Array) -> tuple[Array, Array]:
    """Eigenvalues λ of C (ascending) and δ = ROUNDING·2n·ε·λ_max, the rounding scale of C's entries
    (module docstring, "Precision")."""
    lam = jnp.linalg.eigvalsh(cov)
    return lam, _ROUNDING * cov.shape[-1] * jnp.finfo(cov.dtype).eps * jnp.abs(lam[..., -1])


def _physical_nu(nu: Array, cov: Array) -> Array:
    """ν; ½ where it differs from ½ by less than its rounding error (with ν's own derivative);
    NaN where it is below ½ beyond that (unphysical)."""
    lam, delta = jax.lax.stop_gradient(_rounding(cov))
    tol = (delta * jnp.sqrt(jnp.abs(lam[..., -1]) / jnp.maximum(lam[..., 0], delta)))[..., None]
    half = nu + jax.lax.stop_gradient(0.5 - nu)
    return jnp.where(jnp.abs(nu - 0.5) <= tol, half, jnp.where(nu < 0.5, jnp.nan, nu))


@jax.jit
def _von_neumann(cov: Array) -> Array:
    return jnp.sum(_f(_physical_nu(_symplectic_eigenvalues(cov), cov)), axis=-1)


@jax.jit
def _renyi2(cov: Array) -> Array:
    """S₂ = ½ ln det 2C = ½ Σ ln 2λ_k, ≥ 0: 0 where det 2C ≥ 1 cannot be told from 1 within
    rounding, NaN where C is indefinite or det 2C < 1 beyond rounding (module docstring)."""
    lam, delta = _rounding(cov)
    log_det = jnp.sum(jnp.log(2.0 * jnp.maximum(lam, delta[..., None])), axis=-1)
    log_lower = jnp.sum(jnp.log(2.0 * jnp.maximum(lam - delta[..., None], 0.0)), axis=-1)
    log_upper = jnp.sum(jnp.log(2.0 * (lam + delta[..., None])), axis=-1)
    valid = (lam[..., 0] >= -delta) & (log_upper >= 0.0)
    return jnp.where(valid, jnp.where(log_lower <= 0.0, 0.0, 0.5 * log_det), jnp.nan)


_ENTROPY = {"von_neumann": _von_neumann, "renyi2": _renyi2}


def purity(cov: Float[ArrayLike, "*batch 2n 2n"]) -> Float[Array, "*batch"]:
    """Purity tr ρ² = 1/√det(2C) = Πₖ 1/(2νₖ); 1 for pure states."""
    return jnp.exp(-_renyi2(_as_cov(cov)))


def von_neumann_entropy(cov: Float[ArrayLike, "*batch 2n 2n"]) -> Float[Array, "*batch"]:
    """von Neumann entropy S = −tr ρ ln ρ = Σₖ f(νₖ), f(ν) = (ν+½)ln(ν+½) − (ν−½)ln(ν−½)."""
    return _von_neumann(_as_cov(cov))


def renyi2_entropy(cov: Float[ArrayLike, "*batch 2n 2n"]) -> Float[Array, "*batch"]:
    """Rényi-2 entropy S₂ = −ln tr ρ² = ½ ln det(2C) (NaN if det C ≤ 0)."""
    return _renyi2(_as_cov(cov))


def mutual_information(
    cov: Float[ArrayLike, "*batch 2n 2n"],
    a: Modes = (0,),
    b: Modes = (1,),
    *,
    kind: str = "von_neumann",
) -> Float[Array, "*batch"]:
    """Mutual information I(a:b) = S(ρ_a) + S(ρ_b) − S(ρ_ab) with S of the given ``kind``.

    ``kind="renyi2"`` gives I₂ = ½ ln(det C_a det C_b / det C_ab) (Adesso, Girolami & Serafini,
    PRL 109, 190502 (2012)).
    """
    cov = _as_cov(cov)
    a, b = _bipartition(cov, a, b)
    _check_kind(kind)
    return _mutual_information(cov, a, b, kind)


@functools.partial(jax.jit, static_argnames=("a", "b", "kind"))
def _mutual_information(cov: Array, a: tuple[int, ...], b: tuple[int, ...], kind: str) -> Array:
    entropy = _ENTROPY[kind]
    s_a, s_b = entropy(_reduce_cov(cov, a)), entropy(_reduce_cov(cov, b))
    return s_a + s_b - entropy(_reduce_cov(cov, a + b))


def log_negativity(
    cov: Float[ArrayLike, "*batch 2n 2n"], a: Modes = (0,), b: Modes = (1,)
) -> Float[Array, "*batch"]:
    """Logarithmic negativity E_N = Σ_{ν̃ₖ < ½} −ln(2ν̃ₖ) of the bipartition a | b.

    ν̃ are the symplectic eigenvalues of the partial transpose of ρ_ab, whose covariance is C_ab
    with the sign of every p of the modes in ``b`` flipped. E_N = 0 for separable Gaussian states
    (Vidal & Werner, PRA 65, 032314 (2002)); natural logarithm.
    """
    cov = _as_cov(cov)
    return _log_negativity(cov, *_bipartition(cov, a, b))


@functools.partial(jax.jit, static_argnames=("a", "b"))
def _log_negativity(cov: Array, a: tuple[int, ...], b: tuple[int, ...]) -> Array:
    cov = _reduce_cov(cov, a + b)
    if len(a) + len(b) == 2:
        # ν̃₋ = √det C / ν̃₊: only the large, well-conditioned ν̃₊ comes from the eigenproblem,
        # ν̃₊² = (Δ̃ + √(Δ̃² − 4 det C))/2 with Δ̃ = det A + det B − 2 det X (no cancellation
        # where it matters), and −ln 2ν̃₋ = ln 2ν̃₊ − S₂(C) with the stable S₂ (module docstring).
        a_, b_, x = cov[..., :2, :2], cov[..., 2:, 2:], cov[..., :2, 2:]
        delta = _det2(a_) + _det2(b_) - 2.0 * _det2(x)
        nu_plus = jnp.sqrt(0.5 * (delta + _safe_sqrt(delta**2 - 4.0 * jnp.linalg.det(cov))))
        return _separable_zero(jnp.log(2.0 * nu_plus) - _renyi2(cov))
    flip = jnp.asarray([1.0, 1.0] * len(a) + [1.0, -1.0] * len(b), dtype=cov.dtype)
    nu = _symplectic_eigenvalues(cov * flip[:, None] * flip[None, :])
    return jnp.sum(_separable_zero(-jnp.log(2.0 * nu)), axis=-1)


def _separable_zero(x: Array) -> Array:
    """max(x, 0) with NaN kept and zero derivative at x = 0 (the separable side)."""
    return jnp.where(x > 0, x, jnp.where(jnp.isnan(x), x, 0.0))


# ----------------------------------------------------------------------------------------- discord


def _adj2(m: Array) -> Array:
    """Adjugate of 2×2 matrices: adj(M) = det(M)·M⁻¹."""
    rows = [[m[..., 1, 1], -m[..., 0, 1]], [-m[..., 1, 0], m[..., 0, 0]]]
    return jnp.stack([jnp.stack(row, -1) for row in rows], -2)


def _stationary_points(g1: Array, g2: Array, nu_b: Array) -> list[Array]:
    """Roots t ≥ 0 of P₂t² + P₁t + P₀ (see ``_measured_b``); ½ stands in for a missing root."""
    p2 = 16.0 * g1 * nu_b * (nu_b - g2) - 4.0 * g2
    p1 = 8.0 * nu_b * (g1 - g2)
    p0 = g1 - 4.0 * g2 * nu_b * (nu_b - g1)
    disc = p1**2 - 4.0 * p2 * p0
    q = -0.5 * (p1 + jnp.where(p1 < 0, -1.0, 1.0) * jnp.sqrt(jnp.maximum(disc, 0.0)))
    roots = []
    for num, den in ((p0, q), (q, p2)):
        ok = (disc >= 0) & (den != 0)
        t = num / jnp.where(ok, den, 1.0)
        roots.append(jnp.where(ok & (t >= 0) & (t < 1e15), t, 0.5))  # t = ∞ is a candidate
    return roots


def _measured_b(cov: Array) -> tuple[Array, Array, Array, Array]:
    r"""ν_a, ν_b, ln min_Π (det ε / det A), ln det(1 − K) of a two-mode cov [[A, X], [Xᵀ, B]].

    A Gaussian measurement on b with pure seed Γ (det Γ = ¼) leaves a with covariance
    ε = A − X (B + Γ)⁻¹ Xᵀ. Let K = B⁻¹ Xᵀ A⁻¹ X, with eigenvalues 0 ≤ k₂ ≤ k₁ < 1 for physical
    states (det C = det A det B det(1 − K)). In the frame where B = ν_b·I (a local symplectic map,
    which maps pure seeds to pure seeds; mixed seeds never do better) and with the seed's
    eigenvalues (t, 1/(4t)) aligned with the eigenvectors of K (optimal by von Neumann's trace
    inequality),

        det ε / det A = h(t) = (1 − g₁/(ν_b + t)) (1 − 4t g₂/(4t ν_b + 1)),   g_i = ν_b k_i,

    t ∈ [0, ∞] (t = 0 or ∞: homodyne, t = ½: heterodyne). Its stationary points solve
    P₂t² + P₁t + P₀ = 0 with P₂ = 16 g₁ ν_b (ν_b − g₂) − 4 g₂, P₁ = 8 ν_b (g₁ − g₂),
    P₀ = g₁ − 4 g₂ ν_b (ν_b − g₁); the minimum is taken over them and t ∈ {0, ½, ∞}. Then
    E = det A · min h is Adesso & Datta's E^min (PRL 105, 030501 (2010), quoted in vacuum-1 units,
    where it is 4 × ours); the tests check both against brute-force minimization. h is stationary
    at the minimizer, so rounding in t* enters at second order, and the derivative is taken at fixed
    t* (envelope theorem). Unlike the printed closed form, which divides by det B − ¼, this stays
    accurate when mode b is nearly pure.
    """
    a, b, x = cov[..., :2, :2], cov[..., 2:, 2:], cov[..., :2, 2:]
    det_a, det_b = _det2(a), _det2(b)
    nu_b = jnp.sqrt(det_b)
    # S_B = √ν_b·B^(-1/2) (symplectic, S_B B S_Bᵀ = ν_b·I), with √B = (B + ν_b)/√(tr B + 2ν_b)
    tr_b = b[..., 0, 0] + b[..., 1, 1]
    sqrt_b = b + nu_b[..., None, None] * jnp.eye(2, dtype=cov.dtype)
    s_b = _adj2(sqrt_b) / jnp.sqrt(nu_b * (tr_b + 2.0 * nu_b))[..., None, None]
    y = _adj2(a) @ x @ s_b  # det A · A⁻¹ X S_B
    gm = jnp.swapaxes(x @ s_b, -1, -2) @ y / det_a[..., None, None]  # S_B Xᵀ A⁻¹ X S_B, eig g₁, g₂
    # eigenvalues of the symmetric 2×2 gm: the splitting is a sum of squares (no cancellation)
    off_diagonal = 0.5 * (gm[..., 0, 1] + gm[..., 1, 0])
    split = _safe_sqrt((0.5 * (gm[..., 0, 0] - gm[..., 1, 1])) ** 2 + off_diagonal**2)
    g1 = 0.5 * (gm[..., 0, 0] + gm[..., 1, 1]) + split
    det_g = _det2(x) ** 2 / det_a  # = det gm
    g2 = jnp.where(g1 > 0, det_g / jnp.where(g1 > 0, g1, 1.0), 0.0)
    k1, k2 = g1 / nu_b, g2 / nu_b

    def log_h(t):
        return jnp.log1p(-g1 / (nu_b + t)) + jnp.log1p(-4.0 * t * g2 / (4.0 * t * nu_b + 1.0))

    frozen = jax.lax.stop_gradient((g1, g2, nu_b))
    candidates = [log_h(t) for t in [0.5, *_stationary_points(*frozen)]]
    log_h_min = jnp.min(jnp.stack([jnp.log1p(-k1), jnp.log1p(-k2), *candidates]), axis=0)
    return jnp.sqrt(det_a), nu_b, log_h_min, jnp.log1p(-k1) + jnp.log1p(-k2)


def gaussian_discord(
    cov: Float[ArrayLike, "*batch 2n 2n"],
    a: Modes = (0,),
    b: Modes = (1,),
    *,
    kind: str = "von_neumann",
) -> Float[Array, "*batch"]:
    r"""Gaussian quantum discord D(a|b) of one mode ``a`` and one mode ``b``, measurement on ``b``.

    D = S(ρ_b) − S(ρ_ab) + inf_Π S(ρ_a|Π): the infimum runs over Gaussian measurements Π of mode
    b, after which mode a has covariance ε, and inf det ε = E has a closed form
    (``_measured_b``). With ν_b = √det B and ν∓ the symplectic eigenvalues of C_ab:

    - ``kind="von_neumann"`` (Adesso & Datta, PRL 105, 030501 (2010)):
      D = f(ν_b) − f(ν₋) − f(ν₊) + f(√E), f as in the module docstring;
    - ``kind="renyi2"`` (Adesso, Girolami & Serafini, PRL 109, 190502 (2012)):
      D₂ = ½ ln det B − ½ ln det C_ab + ½ ln E (the factors 2 of S₂ = ½ ln det 2C cancel)
      = I₂(a:b) + ½ ln(E / det A).

    Both vanish for product states and equal the entanglement entropy S(ρ_a) (resp. S₂(ρ_a)) for
    pure states. Unphysical input may give NaN (K with an eigenvalue ≥ 1).
    """
    cov = _as_cov(cov)
    a, b = _bipartition(cov, a, b)
    _check_kind(kind)
    if len(a) != 1 or len(b) != 1:
        raise ValueError(f"gaussian_discord needs one mode on each side; got a = {a}, b = {b}")
    return _gaussian_discord(_reduce_cov(cov, a + b), kind)


@functools.partial(jax.jit, static_argnames=("kind",))
def _gaussian_discord(pair: Array, kind: str) -> Array:
    nu_a, nu_b, log_h_min, log_det_1mk = _measured_b(pair)
    if kind == "renyi2":
        return 0.5 * (log_h_min - log_det_1mk)
    root_e = _physical_nu((nu_a * jnp.exp(0.5 * log_h_min))[..., None], pair)[..., 0]
    nu = _physical_nu(_symplectic_eigenvalues(pair), pair)
    return _f(nu_b) - jnp.sum(_f(nu), axis=-1) + _f(root_e)


# ------------------------------------------------------------------------------- Wigner function


def wigner(state: GaussianState, *quadratures: Float[ArrayLike, " m"]) -> Float[Array, "..."]:
    r"""Wigner function of an n-mode Gaussian state on a grid of quadrature values.

    W(u) = exp(−½ (u − d)ᵀ C⁻¹ (u − d)) / ((2π)ⁿ √det C), normalized to ∫ W du = 1.

    Pass one 1-D array per quadrature, in xpxp order: ``wigner(state, xs, ps)`` for one mode,
    ``wigner(state, x1, p1, x2, p2)`` for two. Each mode contributes the axes (p_k, x_k) to the
    grid, the layout of ``qutip.wigner`` and of ``matplotlib`` images (rows follow p): one mode
    gives shape (len(ps), len(xs)), two modes (len(p1), len(x1), len(p2), len(x2)); batch axes
    of ``state`` lead.
    """
    state = _as_state(state)
    n = state.n_modes
    if len(quadratures) != 2 * n:
        raise ValueError(
            f"wigner needs `quadratures`: one 1-D array per quadrature (2n = {2 * n} for cov of "
            f"shape {state.cov.shape}); got {len(quadratures)}"
        )
    dtype = state.cov.dtype
    axes = [_as_real(q, f"quadratures[{i}]").astype(dtype) for i, q in enumerate(quadratures)]
    for i, q in enumerate(axes):
        if q.ndim != 1:
            raise ValueError(f"quadratures[{i}] must be 1-D; got shape {q.shape}")
    return _wigner(state.mean, state.cov, tuple(axes))


@jax.jit
def _wigner(mean: Array, cov: Array, axes: tuple[Array, ...]) -> Array:
    n = cov.shape[-1] // 2
    order = [i for k in range(n) for i in (2 * k + 1, 2 * k)]  # (p_k, x_k) per mode
    grid = jnp.meshgrid(*(axes[i] for i in order), indexing="ij")
    u = jnp.stack([grid[order.index(i)] for i in range(2 * n)], axis=-1)  # (*grid, 2n)
    batch = cov.shape[:-2]
    cov = cov.reshape(-1, 2 * n, 2 * n)
    diff = u.reshape(1, -1, 2 * n) - mean.reshape(-1, 1, 2 * n)  # (batch, points, 2n)
    quad = jnp.einsum("bpi,bij,bpj->bp", diff, jnp.linalg.inv(cov), diff)
    _, logdet = jnp.linalg.slogdet(cov)
    log_w = -0.5 * quad - 0.5 * logdet[:, None] - n * math.log(2 * math.pi)
    return jnp.exp(log_w).reshape(*batch, *grid[0].shape)


# ----------------------------------------------------------------- occupations and converters


def occupations(state: GaussianState) -> Float[Array, "*batch n"]:
    """Mean number of quanta ⟨a_k†a_k⟩ of every mode: ½(C_xx + C_pp + ⟨x⟩² + ⟨p⟩²) − ½.

    Vacuum → 0, thermal(n̄) → n̄, coherent |α⟩ → |α|². Batch axes of ``state`` lead.
    """
    state = _as_state(state)
    cov, mean = state.cov, state.mean
    diag = jnp.diagonal(cov, axis1=-2, axis2=-1) + mean**2
    return 0.5 * (diag[..., 0::2] + diag[..., 1::2]) - 0.5


def _check_hbar(hbar) -> float:
    if isinstance(hbar, bool) or not isinstance(hbar, int | float) or not hbar > 0 \
            or not math.isfinite(hbar):
        raise ValueError(f"hbar must be a positive finite number; got {hbar!r}")
    return float(hbar)


def _xxpp_order(n: int) -> np.ndarray:
    """Indices taking an xpxp vector to xxpp order: (x₁, …, xₙ, p₁, …, pₙ)."""
    return np.concatenate([2 * np.arange(n), 2 * np.arange(n) + 1])


def to_thewalrus(state: GaussianState, hbar: float = 2.0) -> tuple[Array, Array]:
    """(means, cov) of ``state`` in The Walrus / Strawberry Fields convention.

    Those libraries order quadratures **xxpp** and scale them with ħ (default ħ = 2, vacuum
    covariance (ħ/2)·I): x = √(ħ/2)(a + a†). From this library's convention (ħ = 1, xpxp,
    module docstring): means = √ħ·P d, cov = ħ·P C Pᵀ with P the xpxp → xxpp permutation.
    Batch axes of ``state`` lead.
    """
    state = _as_state(state)
    hbar = _check_hbar(hbar)
    idx = _xxpp_order(state.n_modes)
    mean = math.sqrt(hbar) * state.mean[..., idx]
    return mean, hbar * state.cov[..., idx, :][..., :, idx]


def from_thewalrus(means: ArrayLike, cov: ArrayLike, hbar: float = 2.0) -> GaussianState:
    """The :class:`GaussianState` of The Walrus's (means, cov) (xxpp, ħ = ``hbar``; the inverse of
    :func:`to_thewalrus`)."""
    hbar = _check_hbar(hbar)
    cov = _as_cov(cov, "cov")
    means = _as_real(means, "means")
    if means.shape != cov.shape[:-1]:
        raise ValueError(f"means must have shape {cov.shape[:-1]} to match cov of shape "
                         f"{cov.shape}; got shape {means.shape}")
    _check_finite(means, "means")
    inverse = np.argsort(_xxpp_order(cov.shape[-1] // 2))
    return GaussianState(
        mean=means[..., inverse] / math.sqrt(hbar), cov=cov[..., inverse, :][..., :, inverse] / hbar
    )
