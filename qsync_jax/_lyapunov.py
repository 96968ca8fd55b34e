r"""Differentiable solves of the continuous Lyapunov equation A C + C Aᵀ + D = 0.

For a Hurwitz drift A (every eigenvalue has Re λ < 0) and D = Dᵀ ⪰ 0 the unique solution is the
stationary covariance $C = \int_0^\infty e^{At} D e^{A^\top t} dt$ of dC/dt = AC + CAᵀ + D
(conventions of :mod:`qsync_jax._gaussian`). SciPy's ``solve_continuous_lyapunov(A, Q)`` solves
A X + X Aᴴ = Q, i.e. Q = −D. Two methods, chosen by size (``method="auto"``):

- **Kronecker** (``"kronecker"``): (I ⊗ A + A ⊗ I) vec C = −vec D by one LU solve. Exact up to
  rounding, differentiated by JAX through the LU solve, on every backend. O(m⁶) time and O(m⁴)
  memory for m = 2n quadratures: the fastest for small m.
- **Bartels–Stewart** (``"schur"``): the complex Schur form A = Q T Qᴴ turns the equation into
  T Y + Y Tᴴ = −Qᴴ D Q (Y = Qᴴ C Q), solved column by column from the last by m triangular
  solves: O(m³). Its derivative is a custom JVP: differentiating A C + C Aᵀ + D = 0 gives another
  Lyapunov equation with the same A,
  $$A\,\dot C + \dot C A^\top + (\dot A C + C \dot A^\top + \dot D) = 0,$$
  solved with the same Schur factors (reverse mode transposes this linear solve). JAX's Schur
  decomposition runs on CPUs only, so ``"auto"`` uses it on CPUs only.

``"auto"`` takes Bartels–Stewart for m > ``KRONECKER_MAX_QUADRATURES`` = 12 (n > 6 modes; CPU
backend): the Kronecker system has m² × m² entries (4096² at n = 32), while Bartels–Stewart
costs O(m³); ``benchmarks/bench_quadratic_steady_state.py`` measures where the two cross (its
``crossover_n_modes``). Batched (vmapped) small solves favour Kronecker further.
"""

import jax
import jax.numpy as jnp
from jax.scipy.linalg import schur, solve_triangular
from jaxtyping import Array, Float

from ._gaussian import _as_real

STABILITY_RTOL = 1e-10
"""Eigenvalue sums |λᵢ + λⱼ| ≤ STABILITY_RTOL · max|λ| count as zero: no unique solution (and a
drift with max Re λ ≥ −STABILITY_RTOL · max|λ| has no unique steady state)."""

KRONECKER_MAX_QUADRATURES = 12
"""``method="auto"`` solves in Kronecker form up to this many quadratures m = 2n, above it by
Bartels–Stewart (on CPUs): the crossover of ``benchmarks/bench_quadratic_steady_state.py``."""

_METHODS = ("auto", "kronecker", "schur")


def solve_lyapunov(
    A: Float[Array, "*batch m m"], D: Float[Array, "*batch m m"], *, method: str = "auto"
) -> Float[Array, "*batch m m"]:
    r"""The solution C of A C + C Aᵀ + D = 0 (differentiable; module docstring for the methods).

    Unique iff no two eigenvalues of A sum to zero; where two do (|λᵢ + λⱼ| ≤ STABILITY_RTOL ·
    max|λ|), or the solution is not finite, the result is NaN. For a Hurwitz A and D = Dᵀ ⪰ 0 it
    is the stationary covariance $C = \int_0^\infty e^{At} D e^{A^\top t} dt$. Leading axes are
    batch axes. ``method``: ``"auto"`` (default), ``"kronecker"`` or ``"schur"`` (Bartels–Stewart,
    CPU only). (SciPy's ``solve_continuous_lyapunov(A, Q)`` solves A X + X Aᴴ = Q, i.e. Q = −D.)
    """
    A, D = _as_real(A, "`A`"), _as_real(D, "`D`")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2] or D.shape != A.shape:
        raise ValueError(
            f"`A` and `D` must be square matrices of the same shape (..., m, m); got A "
            f"{A.shape} and D {D.shape}."
        )
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}; got {method!r}.")
    if method == "auto":
        small = A.shape[-1] <= KRONECKER_MAX_QUADRATURES
        method = "kronecker" if small or jax.default_backend() != "cpu" else "schur"
    if method == "kronecker":
        C = _kronecker(A, D)
    else:
        C = jnp.vectorize(_bartels_stewart, signature="(m,m),(m,m)->(m,m)")(A, D)
    return jnp.where(_unique(A, C)[..., None, None], C, jnp.nan)


def _unique(A: Array, C: Array) -> Array:
    """Whether the solution is unique (no two eigenvalues of A sum to zero, within
    ``STABILITY_RTOL``) and finite: elsewhere :func:`solve_lyapunov` returns NaN."""
    lam = jnp.linalg.eigvals(jax.lax.stop_gradient(A))
    sums = jnp.abs(lam[..., :, None] + lam[..., None, :])
    unique = jnp.min(sums, axis=(-2, -1)) > STABILITY_RTOL * jnp.max(jnp.abs(lam), axis=-1)
    return unique & jnp.all(jnp.isfinite(C), axis=(-2, -1))


def _kronecker(A: Array, D: Array) -> Array:
    m = A.shape[-1]
    eye = jnp.eye(m, dtype=A.dtype)
    # Row-major vec: vec(AC)_{ij} = A_ik C_kj, vec(CAᵀ)_{ij} = C_il A_jl.
    kron = jnp.einsum("...ik,jl->...ijkl", A, eye) + jnp.einsum("ik,...jl->...ijkl", eye, A)
    kron = kron.reshape(*A.shape[:-2], m * m, m * m)
    vec = jnp.linalg.solve(kron, -D.reshape(*D.shape[:-2], m * m, 1))
    return vec.reshape(D.shape)


def _schur_solve(T: Array, Q: Array, D: Array) -> Array:
    """C with A C + C Aᵀ + D = 0, given the complex Schur form A = Q T Qᴴ (A real)."""
    m = T.shape[-1]
    F = -(Q.conj().T @ jax.lax.complex(D, jnp.zeros_like(D)) @ Q)
    eye = jnp.eye(m, dtype=T.dtype)

    # T Y + Y Tᴴ = F, column j: (T + conj(T_jj) I) y_j = f_j − Σ_{k>j} conj(T_jk) y_k. The columns
    # k ≤ j of Y are still zero when column j is solved, so the sum runs over all k.
    def column(Y, j):
        rhs = F[:, j] - Y @ T[j].conj()
        y = solve_triangular(T + T[j, j].conj() * eye, rhs, lower=False)
        return Y.at[:, j].set(y), None

    Y, _ = jax.lax.scan(column, jnp.zeros_like(F), jnp.arange(m - 1, -1, -1))
    return (Q @ Y @ Q.conj().T).real


@jax.custom_jvp
def _bartels_stewart(A: Array, D: Array) -> Array:
    T, Q = schur(jax.lax.complex(A, jnp.zeros_like(A)), output="complex")
    return _schur_solve(T, Q, D)


@_bartels_stewart.defjvp
def _bartels_stewart_jvp(primals, tangents):
    A, D = primals
    dA, dD = tangents
    T, Q = schur(jax.lax.complex(A, jnp.zeros_like(A)), output="complex")
    C = _schur_solve(T, Q, D)
    return C, _schur_solve(T, Q, dA @ C + C @ dA.T + dD)
