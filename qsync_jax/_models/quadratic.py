r"""Any quadratic Hamiltonian with linear jump operators: an exactly Gaussian Lindblad model.

The master equation $\dot\rho = -i[H, \rho] + \sum_r (L_r\rho L_r^\dagger - \tfrac12\{L_r^\dagger
L_r, \rho\})$ of n modes with

$$H = \sum_{ij} M_{ij} a_i^\dagger a_j + \tfrac12\sum_{ij}\big(K_{ij} a_i^\dagger a_j^\dagger
      + K_{ij}^* a_j a_i\big) + \sum_i \big(F_i a_i^\dagger + F_i^* a_i\big),\qquad
  L_r = \sum_i \big(J_{ri}\, a_i + J_{r,n+i}\, a_i^\dagger\big),$$

(M Hermitian, K symmetric) maps Gaussian states to Gaussian states, and its first and second
moments obey closed linear equations. In real quadratures (conventions of
:mod:`qsync_jax._gaussian`: ħ = 1, xpxp, vacuum ½·I) write a = T u with
T_{i,2i} = 1/√2, T_{i,2i+1} = i/√2, so that:

- **Hamiltonian.** H = ½ uᵀ H_u u + hᵀ u + const with
  $H_u = 2\,\mathrm{Re}(T^\dagger M T + T^\dagger K \bar T)$ (real symmetric) and
  $h = 2\,\mathrm{Re}(T^\dagger F)$. (Write H = ½ αᵀ… in α = (a, a†) = (T, T̄)u and drop the
  c-numbers from reordering: the antisymmetric imaginary part of the quadratic form is a
  commutator, a constant.) With [u_j, u_k] = iΩ_jk, Heisenberg's equation gives
  i[H, u] = Ω (H_u u + h).
- **Jumps.** Each L_r = c_r · u with $c = J_{:, :n} T + J_{:, n:} \bar T$ (k × 2n). With the
  Hermitian matrix Γ = cᴴc (Γ ⪰ 0), the adjoint dissipator on a linear observable,
  $\sum_r \tfrac12(L_r^\dagger[u_k, L_r] + [L_r^\dagger, u_k]L_r)$, equals
  $\tfrac{i}{2}\Omega(\bar\Gamma - \Gamma)u = \Omega\,\mathrm{Im}(\Gamma)\,u$; on the symmetrized
  second moments it adds the constant $\Omega\,\mathrm{Re}(\Gamma)\,\Omega^\top$.

Hence the model is linear (:class:`qsync_jax.AbstractLinearModel`):

$$\frac{d\langle u\rangle}{dt} = A\langle u\rangle + b,\quad
  \frac{dC}{dt} = AC + CA^\top + D,\qquad A = \Omega\,(H_u + \mathrm{Im}\,\Gamma),\quad
  b = \Omega h,\quad D = \Omega\,\mathrm{Re}(\Gamma)\,\Omega^\top.$$

Example: one damped mode, M = ω, L = √κ a (J = [[√κ, 0]]): Γ = (κ/2)[[1, i], [−i, 1]],
A = ωΩ − (κ/2)I, D = (κ/2)I, steady covariance ½·I (vacuum). Thermal damping at n̄: the two
jumps √(κ(n̄+1)) a and √(κn̄) a† (J = [[√(κ(n̄+1)), 0], [0, √(κn̄)]]).

The derivation is checked against QuTiP (Fock space, ``tests/test_quadratic.py``); the long form
is in ``docs/own-model.md``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._gaussian import symplectic_form
from ._base import AbstractLinearModel

_HERMITIAN_RTOL = 1e-12  # tolerance of the Hermitian/symmetric checks, relative to max(1, max|M|)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _ladder(n: int) -> np.ndarray:
    """T (n, 2n) with a = T u: a_i = (x_i + i p_i)/√2."""
    T = np.zeros((n, 2 * n), complex)
    T[np.arange(n), 2 * np.arange(n)] = 1 / math.sqrt(2)
    T[np.arange(n), 2 * np.arange(n) + 1] = 1j / math.sqrt(2)
    return T


def _as_numbers(name: str, value, *, real: bool) -> Array:
    """``value`` as an inexact array, finite when concrete; a clear error otherwise."""
    try:
        arr = jnp.asarray(value)
    except TypeError:
        raise ValueError(f"`{name}` must be an array of numbers; got {value!r}.") from None
    if not (jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == bool):
        raise ValueError(f"`{name}` must hold numbers; got dtype {arr.dtype}.")
    if real and jnp.iscomplexobj(arr):
        raise ValueError(f"`{name}` must be real; got dtype {arr.dtype} (shape {arr.shape}).")
    if not jnp.issubdtype(arr.dtype, jnp.inexact):
        arr = arr.astype(float)
    if _is_concrete(arr) and not np.all(np.isfinite(np.asarray(arr))):
        raise ValueError(f"`{name}` (shape {arr.shape}) must be finite; it has NaN or inf entries.")
    return arr


def _split(name: str, value, real, imag, shape: tuple[int, ...] | None):
    """(real part, imaginary part) of an argument given whole (``value``) or as its two parts."""
    if value is not None and (real is not None or imag is not None):
        raise ValueError(f"give `{name}` or `{name}_real`/`{name}_imag`, not both.")
    if value is not None:
        arr = _as_numbers(name, value, real=False)
        parts = (jnp.real(arr), jnp.imag(arr))
        names = (name, name)
    else:
        re = _as_numbers(f"{name}_real", 0.0 if real is None else real, real=True)
        im = _as_numbers(f"{name}_imag", 0.0 if imag is None else imag, real=True)
        re = jnp.zeros_like(im) if real is None else re  # a missing part is zero
        im = jnp.zeros_like(re) if imag is None else im
        parts, names = (re, im), (f"{name}_real", f"{name}_imag")
    if shape is not None:
        parts = tuple(
            _shaped(n, p, shape, value is None and given is None)
            for n, p, given in zip(names, parts, (real, imag))
        )
    dtype = jnp.result_type(*parts, float)
    return tuple(p.astype(dtype) for p in parts)


def _shaped(name: str, part: Array, shape: tuple[int, ...], default: bool) -> Array:
    if default:
        return jnp.broadcast_to(part, shape)
    if part.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape}; got shape {part.shape}.")
    return part


def _check_symmetry(name: str, re: Array, im: Array, hermitian: bool) -> None:
    """M = re + i·im Hermitian (``hermitian``) or complex symmetric, checked when concrete."""
    if not (_is_concrete(re) and _is_concrete(im)):
        return
    re, im = np.asarray(re), np.asarray(im)
    sign = -1.0 if hermitian else 1.0
    asym = max(np.max(np.abs(re - re.T), initial=0.0),
               np.max(np.abs(im - sign * im.T), initial=0.0))
    scale = max(1.0, np.max(np.abs(re), initial=0.0), np.max(np.abs(im), initial=0.0))
    if asym > _HERMITIAN_RTOL * scale:
        kind = "Hermitian (M_ij = conj(M_ji))" if hermitian else "symmetric (K_ij = K_ji)"
        raise ValueError(
            f"`{name}` (shape {re.shape}) must be {kind}; its largest violation is {asym:.3g}."
        )


class QuadraticLindbladModel(AbstractLinearModel):
    r"""n modes with a quadratic Hamiltonian and linear jump operators (module docstring).

    H = Σ M_ij a_i†a_j + ½Σ (K_ij a_i†a_j† + h.c.) + Σ (F_i a_i† + h.c.),
    L_r = Σ_i J[r, i] a_i + J[r, n+i] a_i†.

    Every entry is a real array leaf — the real and imaginary parts of M, K, J and F are the
    fields ``hamiltonian_real``, ``hamiltonian_imag``, ``pairing_real``, ``pairing_imag``,
    ``jumps_real``, ``jumps_imag``, ``drive_real``, ``drive_imag`` — so the model jits, vmaps,
    sweeps, differentiates and optimizes like every other model. Only the Hermitian part of M
    and the symmetric part of K enter the dynamics: the constructor checks that M and K have no
    other part (when their values are concrete), and a traced change of one entry M_ij (a
    gradient, an optimizer step) acts through (M + Mᴴ)/2, so its gradient is symmetric.
    Sweep a coupling by building a Hermitian M from it (e.g. in ``fn`` of :func:`qsync_jax.sweep`
    or under ``jax.vmap``); diagonal entries, J and F may be swept entry by entry.

    The default initial state is the vacuum (``bath_occupations`` is zero: the model knows its
    jumps, not the temperatures behind them).
    """

    hamiltonian_real: Float[Array, "n n"]
    hamiltonian_imag: Float[Array, "n n"]
    pairing_real: Float[Array, "n n"]
    pairing_imag: Float[Array, "n n"]
    jumps_real: Float[Array, "k 2n"]
    jumps_imag: Float[Array, "k 2n"]
    drive_real: Float[Array, " n"]
    drive_imag: Float[Array, " n"]

    def __init__(
        self,
        hamiltonian=None,
        pairing=None,
        jumps=None,
        drive=None,
        *,
        hamiltonian_real=None,
        hamiltonian_imag=None,
        pairing_real=None,
        pairing_imag=None,
        jumps_real=None,
        jumps_imag=None,
        drive_real=None,
        drive_imag=None,
    ):
        """**Main arguments** (complex arrays; n modes, k jump operators):

        - `hamiltonian`: M, (n, n) Hermitian.
        - `pairing`: K, (n, n) complex symmetric; default 0.
        - `jumps`: J, (k, 2n): row r defines L_r = Σ_i J[r, i] a_i + J[r, n+i] a_i†; default no
          jumps (a closed system, no steady state).
        - `drive`: F, (n,); default 0.

        **Other arguments:** each of them may instead be given as its real and imaginary parts,
        ``hamiltonian_real=``/``hamiltonian_imag=`` and so on (the fields; this is how
        ``dataclasses.replace`` and sweeps rebuild a model). A missing imaginary part is zero.

        Raises ``ValueError`` naming the argument for wrong shapes or types, non-finite entries,
        a non-Hermitian M or a non-symmetric K.
        """
        if hamiltonian is None and hamiltonian_real is None:
            raise ValueError("`hamiltonian` (M, an (n, n) Hermitian matrix) is required.")
        if isinstance(jumps, tuple | list) and len(jumps) == 0:
            jumps = None  # `jumps=()`: no jumps
        m_re, m_im = _split("hamiltonian", hamiltonian, hamiltonian_real, hamiltonian_imag, None)
        if m_re.shape != m_im.shape or m_re.ndim != 2 or m_re.shape[0] != m_re.shape[1]:
            raise ValueError(
                f"`hamiltonian` must be a square (n, n) matrix with n ≥ 1; got shape "
                f"{m_re.shape if m_re.shape == m_im.shape else (m_re.shape, m_im.shape)}."
            )
        n = m_re.shape[0]
        if n < 1:
            raise ValueError(f"`hamiltonian` must describe n ≥ 1 modes; got shape {m_re.shape}.")
        k_re, k_im = _split("pairing", pairing, pairing_real, pairing_imag, (n, n))
        if jumps is None and jumps_real is None and jumps_imag is None:
            jumps_real = np.zeros((0, 2 * n))
        j_re, j_im = _split("jumps", jumps, jumps_real, jumps_imag, None)
        if j_re.shape != j_im.shape or j_re.ndim != 2 or j_re.shape[1] != 2 * n:
            got = j_re.shape if j_re.shape == j_im.shape else (j_re.shape, j_im.shape)
            raise ValueError(
                f"`jumps` must have shape (k, 2n) = (k, {2 * n}) (one row per jump operator, "
                f"n = {n} modes from `hamiltonian`); got shape {got}."
            )
        f_re, f_im = _split("drive", drive, drive_real, drive_imag, (n,))
        _check_symmetry("hamiltonian", m_re, m_im, hermitian=True)
        _check_symmetry("pairing", k_re, k_im, hermitian=False)
        self.hamiltonian_real, self.hamiltonian_imag = m_re, m_im
        self.pairing_real, self.pairing_imag = k_re, k_im
        self.jumps_real, self.jumps_imag = j_re, j_im
        self.drive_real, self.drive_imag = f_re, f_im

    @property
    def n_modes(self) -> int:
        return self.hamiltonian_real.shape[-1]

    @property
    def hamiltonian(self):
        """M (Hermitian part of the stored matrix), complex (n, n)."""
        M = jax.lax.complex(self.hamiltonian_real, self.hamiltonian_imag)
        return 0.5 * (M + M.conj().T)

    @property
    def pairing(self):
        """K (symmetric part of the stored matrix), complex (n, n)."""
        K = jax.lax.complex(self.pairing_real, self.pairing_imag)
        return 0.5 * (K + K.T)

    @property
    def jumps(self):
        """J, complex (k, 2n)."""
        return jax.lax.complex(self.jumps_real, self.jumps_imag)

    @property
    def drive(self):
        """F, complex (n,)."""
        return jax.lax.complex(self.drive_real, self.drive_imag)

    def bath_occupations(self) -> Float[Array, " n"]:
        """Zero for every mode: the default initial state is the vacuum."""
        return jnp.zeros(self.n_modes, dtype=self.hamiltonian_real.dtype)

    def quadrature_hamiltonian(self) -> tuple[Float[Array, "2n 2n"], Float[Array, " 2n"]]:
        """(H_u, h) with H = ½ uᵀ H_u u + hᵀ u + const in quadratures (module docstring)."""
        T = jnp.asarray(_ladder(self.n_modes), dtype=self.hamiltonian.dtype)
        Th = T.conj().T
        H_u = 2.0 * jnp.real(Th @ self.hamiltonian @ T + Th @ self.pairing @ T.conj())
        return 0.5 * (H_u + H_u.T), 2.0 * jnp.real(Th @ self.drive)

    def jump_gram(self):
        """Γ = cᴴc, complex Hermitian (2n, 2n), with L_r = c_r · u (module docstring)."""
        n = self.n_modes
        J = self.jumps
        T = jnp.asarray(_ladder(n), dtype=J.dtype)
        c = J[:, :n] @ T + J[:, n:] @ T.conj()
        return c.conj().T @ c

    def drift_matrix(self) -> Float[Array, "2n 2n"]:
        """A = Ω (H_u + Im Γ)."""
        omega = symplectic_form(self.n_modes, self.hamiltonian_real.dtype)
        return omega @ (self.quadrature_hamiltonian()[0] + jnp.imag(self.jump_gram()))

    def drive_vector(self) -> Float[Array, " 2n"]:
        """b = Ω h."""
        omega = symplectic_form(self.n_modes, self.hamiltonian_real.dtype)
        return omega @ self.quadrature_hamiltonian()[1]

    def diffusion_matrix(self) -> Float[Array, "2n 2n"]:
        """D = Ω Re(Γ) Ωᵀ (symmetric, positive semidefinite)."""
        omega = symplectic_form(self.n_modes, self.hamiltonian_real.dtype)
        D = omega @ jnp.real(self.jump_gram()) @ omega.T
        return 0.5 * (D + D.T)
