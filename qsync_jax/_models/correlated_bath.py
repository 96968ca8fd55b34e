r"""Two oscillators damped into correlated thermal baths (Bittner & Tyagi, 2025).

The master equation (eqs. (1)–(12) of E. R. Bittner and B. Tyagi, "Noise-induced
synchronization in coupled quantum oscillators", 2025) is

$$\dot\rho = -i[H, \rho] + \sum_{s=\pm} \big(\mathcal D[L_s] + \mathcal D[L'_s]\big)\rho,\qquad
  H = \omega_1 a_1^\dagger a_1 + \omega_2 a_2^\dagger a_2 + g(a_1^\dagger a_2 + a_2^\dagger a_1),$$

with $\mathcal D[L]\rho = L\rho L^\dagger - \tfrac12\{L^\dagger L, \rho\}$,
$L_\pm = \sqrt{(1\pm\xi)/2}\,(L_1 \pm L_2)$, $L'_\pm = \sqrt{(1\pm\xi)/2}\,(L'_1 \pm L'_2)$,
$L_i = \sqrt{\gamma(\bar n_i + 1)}\,a_i$ and $L'_i = \sqrt{\gamma \bar n_i}\,a_i^\dagger$. Summing
over ± gives the dissipator $\sum_{ij}\Xi_{ij}(L_i\rho L_j^\dagger - \tfrac12\{L_j^\dagger L_i,
\rho\})$ (and likewise for L'), Ξ = [[1, ξ], [ξ, 1]]. With the rate matrices

$$\Gamma^\downarrow_{ij} = \gamma\,\Xi_{ij}\sqrt{(\bar n_i+1)(\bar n_j+1)},\qquad
  \Gamma^\uparrow_{ij} = \gamma\,\Xi_{ij}\sqrt{\bar n_i \bar n_j},\qquad
  G = \Gamma^\downarrow - \Gamma^\uparrow = \begin{pmatrix}\gamma & \xi\gamma_{12}\\
  \xi\gamma_{12} & \gamma\end{pmatrix},$$

$\gamma_{12} = \gamma(\sqrt{(\bar n_1+1)(\bar n_2+1)} - \sqrt{\bar n_1\bar n_2})$ (eq. (22)) and
h = [[ω₁, g], [g, ω₂]], the adjoint master equation gives exactly

$$\frac{d\langle a\rangle}{dt} = K\langle a\rangle,\quad K = -ih - \tfrac12 G,\qquad
  \frac{dN}{dt} = i[h, N] - \tfrac12(GN + NG) + \Gamma^\uparrow,\quad N_{kl} = \langle a_k^\dagger
  a_l\rangle,$$

and ⟨a_k a_l⟩ decays without source. In real quadratures (conventions of
:mod:`qsync_jax._gaussian`) the model is linear with

$$A = -\tfrac12 G\otimes I_2 + h\otimes J,\quad J = \begin{pmatrix}0 & 1\\ -1 & 0\end{pmatrix},
  \qquad D = \tfrac12(\Gamma^\downarrow + \Gamma^\uparrow)\otimes I_2,\qquad b = 0.$$

The derivation, its brute-force check (QuTiP), and the formulas of the paper that disagree with
it (eqs. (23), (24), (27)–(34)) are in ``docs/physics-notes.md``.

Stability. The eigenvalues of K are
$\lambda_\pm = -\gamma/2 - i\bar\omega \pm \tfrac{1}{2}\sqrt{(2ig + \xi\gamma_{12})^2 - \delta^2}$,
ω̄ = (ω₁+ω₂)/2, δ = ω₁ − ω₂ (those of A are these and their conjugates). Since
$\gamma_{12} \ge \gamma$ with equality iff n̄₁ = n̄₂, the net damping matrix G is indefinite for
|ξ| > γ/γ₁₂: with unequal temperatures and strong correlations the correlated thermal
*gain* channels L'± amplify a normal mode (on resonance, for |ξ|γ₁₂ > γ) and there is no steady
state. At equal temperatures and ξ = ±1 on resonance one mode is dark (zero damping).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from .._gaussian import GaussianState, _as_real, _as_state
from ._base import AbstractLinearModel, check_parameter, parameter

_J = np.array([[0.0, 1.0], [-1.0, 0.0]])


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _parameter(cls, name: str, value, pair: bool) -> Array:
    """``value`` as a float array: a scalar, or (``pair``) a scalar or a (2,) array, broadcast;
    checked against the declared bounds of ``name`` (:func:`qsync_jax.parameters`)."""
    if np.iscomplexobj(value):
        raise ValueError(f"`{name}` must be real; got {value!r} (shape {jnp.shape(value)}).")
    arr = _as_real(value, f"`{name}`").astype(float)
    shapes = ((), (2,)) if pair else ((),)
    if arr.shape not in shapes:
        expected = "a scalar or shape (2,) (one value per oscillator)" if pair else "a scalar"
        raise ValueError(f"`{name}` must be {expected}; got shape {arr.shape}.")
    arr = check_parameter(cls, name, arr)
    return jnp.broadcast_to(arr, (2,)) if pair else arr


def _drift(G: Array, h: Array) -> Array:
    """A = −½G⊗I₂ + h⊗J for N modes (G, h: (..., N, N); leading axes are batch axes)."""
    N = G.shape[-1]
    eye = jnp.eye(2, dtype=G.dtype)
    damping = jnp.einsum("...kl,ij->...kilj", G, eye).reshape(*G.shape[:-2], 2 * N, 2 * N)
    return -0.5 * damping + jnp.kron(h, jnp.asarray(_J, dtype=G.dtype))


def _diffusion(loss: Array, gain: Array) -> Array:
    """D = ½(Γ↓ + Γ↑)⊗I₂."""
    return jnp.kron(0.5 * (loss + gain), jnp.eye(2, dtype=loss.dtype))


class CorrelatedBathOscillators(AbstractLinearModel):
    r"""Two exchange-coupled oscillators, each damped at rate γ into a thermal bath n̄ᵢ, with the
    two dissipation channels correlated by ξ (module docstring for the equations).

    Every parameter is an array leaf, so one compiled function serves all values; a batch of
    models (e.g. built under ``jax.vmap`` or by :func:`qsync_jax.sweep`) vmaps like any pytree.
    Modes: oscillator 1 is mode 0, oscillator 2 is mode 1. The default initial state (zero mean,
    each oscillator thermal at n̄ᵢ) is stationary at ξ = 0, g = 0.

    Derivatives with respect to ``n_th`` are infinite (or NaN) where an occupation is 0: the
    rates contain √n̄ᵢ.
    """

    omega: Float[Array, "2"] = parameter(
        units="1/time", doc="oscillator frequencies (ω₁, ω₂), either sign: only differences "
                            "matter (a common rotating frame shifts both)")
    g: Float[Array, ""] = parameter(units="1/time", doc="exchange coupling g (either sign)")
    gamma: Float[Array, ""] = parameter(
        lower=0.0, units="1/time", doc="damping rate γ of each oscillator (≥ 0; γ = 0 is closed "
                                       "and has no steady state)")
    xi: Float[Array, ""] = parameter(
        lower=-1.0, upper=1.0, units="1", doc="correlation ξ of the two dissipation channels")
    n_th: Float[Array, "2"] = parameter(
        lower=0.0, units="quanta", doc="thermal occupations (n̄₁, n̄₂) of the baths (≥ 0)")

    def __init__(self, omega, g, gamma, xi, n_th=0.0):
        """**Arguments:**

        - `omega`: frequencies (ω₁, ω₂), or one value for both.
        - `g`: exchange coupling g (any sign).
        - `gamma`: damping rate γ ≥ 0 of each oscillator.
        - `xi`: correlation ξ ∈ [−1, 1] of the two dissipation channels.
        - `n_th`: thermal occupations (n̄₁, n̄₂) ≥ 0 of the baths, or one value for both.

        Raises ``ValueError`` naming the argument for wrong shapes, complex or non-finite values,
        γ < 0, |ξ| > 1 or n̄ < 0 (values are checked when concrete, i.e. not under tracing;
        bounds, units and meaning: ``qs.parameters(qs.CorrelatedBathOscillators)``).
        """
        cls = type(self)
        self.omega = _parameter(cls, "omega", omega, True)
        self.g = _parameter(cls, "g", g, False)
        self.gamma = _parameter(cls, "gamma", gamma, False)
        self.xi = _parameter(cls, "xi", xi, False)
        self.n_th = _parameter(cls, "n_th", n_th, True)

    @property
    def n_modes(self) -> int:
        return 2

    def bath_occupations(self) -> Float[Array, "2"]:
        return self.n_th

    @property
    def gamma12(self) -> Float[Array, ""]:
        """γ₁₂ = γ(√((n̄₁+1)(n̄₂+1)) − √(n̄₁n̄₂)) (eq. (22)): the correlated damping per unit ξ."""
        n1, n2 = self.n_th[0], self.n_th[1]
        return self.gamma * (jnp.sqrt((n1 + 1.0) * (n2 + 1.0)) - jnp.sqrt(n1 * n2))

    def _frequency_matrix(self) -> Float[Array, "2 2"]:
        """h = [[ω₁, g], [g, ω₂]]: H = Σ h_kl a_k† a_l."""
        return jnp.diag(self.omega) + self.g * (1.0 - jnp.eye(2, dtype=self.omega.dtype))

    def _rates(self) -> tuple[Float[Array, "2 2"], Float[Array, "2 2"]]:
        """(Γ↓, Γ↑): Γ↓_ij = γ Ξ_ij √((n̄ᵢ+1)(n̄ⱼ+1)), Γ↑_ij = γ Ξ_ij √(n̄ᵢn̄ⱼ)."""
        eye = jnp.eye(2, dtype=self.xi.dtype)
        xi_matrix = eye + self.xi * (1.0 - eye)
        loss, gain = jnp.sqrt(self.n_th + 1.0), jnp.sqrt(self.n_th)
        return (
            self.gamma * xi_matrix * jnp.outer(loss, loss),
            self.gamma * xi_matrix * jnp.outer(gain, gain),
        )

    def _damping_matrix(self, xi) -> Array:
        """G(ξ) = [[γ, ξγ₁₂], [ξγ₁₂, γ]] for a real or complex ξ (analytic in ξ)."""
        xi = jnp.asarray(xi)
        dtype = xi.dtype if jnp.iscomplexobj(xi) else self.gamma.dtype
        off = (xi.astype(dtype) * self.gamma12.astype(dtype))[..., None, None]
        eye = jnp.eye(2, dtype=dtype)
        return self.gamma.astype(dtype) * eye + off * (1.0 - eye)

    def _drift_at(self, xi) -> Array:
        """A(ξ) = −½G(ξ)⊗I₂ + h⊗J, analytic in ξ (leading axes of ``xi`` are batch axes)."""
        G = self._damping_matrix(xi)
        return _drift(G, self._frequency_matrix().astype(G.dtype))

    def _block(self, xi, sign: int) -> Complex[Array, "*batch 2 2"]:
        """The ⟨a⟩ (sign +1: −ih − ½G(ξ)) or ⟨a†⟩ (sign −1: ih − ½G(ξ)) block of A(ξ)."""
        G = self._damping_matrix(xi).astype(complex)
        return -sign * 1j * self._frequency_matrix().astype(complex) - 0.5 * G

    def amplitude_matrix(self) -> Complex[Array, "2 2"]:
        """K = −ih − ½G: d⟨a⟩/dt = K⟨a⟩ for ⟨a⟩ = (⟨a₁⟩, ⟨a₂⟩) (the ⟨a⟩ rows of eq. (21))."""
        return self._block(self.xi, +1)

    def drift_matrix(self) -> Float[Array, "4 4"]:
        return self._drift_at(self.xi)

    def drive_vector(self) -> Float[Array, "4"]:
        return jnp.zeros(4, dtype=self.omega.dtype)

    def diffusion_matrix(self) -> Float[Array, "4 4"]:
        return _diffusion(*self._rates())


def _check_model(model) -> None:
    if not isinstance(model, CorrelatedBathOscillators):
        raise TypeError(f"`model` must be a CorrelatedBathOscillators; got {type(model).__name__}.")


def drift_spectrum(
    model: CorrelatedBathOscillators, xi: ArrayLike | None = None
) -> Complex[Array, "*batch 4"]:
    r"""Eigenvalues of the drift A(ξ), continued analytically to complex ξ (Fig. 1 of the paper).

    A(ξ) is affine in ξ; for a complex ξ = |ξ|e^{iφ} its eigenvalues are those of the ⟨a⟩ block
    K(ξ) = −ih − ½G(ξ) and of the ⟨a†⟩ block ih − ½G(ξ) (for real ξ the second set is the complex
    conjugate of the first). Physical only for real ξ ∈ [−1, 1].

    **Arguments:**

    - `model`: the model; its ``xi`` is used when `xi` is None.
    - `xi`: real or complex values of ξ, any shape (batch axes of the result).

    **Returns** (..., 4) complex eigenvalues sorted by imaginary part (frequency), then real part
    (damping rate is −Re λ).
    """
    _check_model(model)
    xi = model.xi if xi is None else jnp.asarray(xi)
    if not jnp.issubdtype(xi.dtype, jnp.inexact):
        xi = xi.astype(float)
    if _is_concrete(xi) and not np.all(np.isfinite(np.asarray(xi))):
        raise ValueError(f"`xi` must be finite; got shape {xi.shape} with non-finite entries.")
    A = model._drift_at(xi).astype(complex)
    lam = jnp.linalg.eigvals(A)
    order = jnp.lexsort((lam.real, lam.imag), axis=-1)
    return jnp.take_along_axis(lam, order, axis=-1)


def exceptional_points(model: CorrelatedBathOscillators) -> Complex[Array, "4"]:
    r"""The complex values of ξ where two eigenvalues of the continued drift A(ξ) coalesce.

    For each 2×2 block M(ξ) of A(ξ) (⟨a⟩ and ⟨a†⟩), the squared eigenvalue splitting
    (λ₊ − λ₋)² = (tr M)² − 4 det M is a quadratic polynomial in ξ; it is evaluated at ξ = −1, 0, 1
    from the blocks, interpolated, and its roots are returned: four points, sorted by real then
    imaginary part. Closed form: ξ_EP = (±δ ± 2ig)/γ₁₂ — on the real axis at ±ξ_crit = ±δ/γ₁₂ for
    g = 0, moved off it by ±2g/γ₁₂ for g ≠ 0. On resonance (δ = 0) the roots are double and the
    block is ∝ I there (its off-diagonal ig + ξγ₁₂/2 vanishes): diabolic points, not exceptional
    ones — a resonant pair has no exceptional point at any complex ξ. Near double roots the
    computed roots are accurate to √ε ≈ 1e−8 only.
    """
    _check_model(model)
    nodes = jnp.asarray([-1.0, 0.0, 1.0], dtype=model.gamma.dtype)
    roots = jnp.concatenate(
        [_quadratic_roots(_splitting(model._block(nodes, sign))) for sign in (+1, -1)]
    )
    order = jnp.lexsort((roots.imag, roots.real))
    return roots[order]


def _splitting(M: Complex[Array, "3 2 2"]) -> Complex[Array, "3"]:
    """(λ₊ − λ₋)² = (tr M)² − 4 det M of each 2×2 matrix."""
    tr = M[:, 0, 0] + M[:, 1, 1]
    det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
    return tr**2 - 4.0 * det


def _quadratic_roots(values: Complex[Array, "3"]) -> Complex[Array, "2"]:
    """Roots of the quadratic through (−1, v₀), (0, v₁), (1, v₂)."""
    c0 = values[1]
    c1 = 0.5 * (values[2] - values[0])
    c2 = 0.5 * (values[2] + values[0]) - values[1]
    root = jnp.sqrt(c1**2 - 4.0 * c2 * c0)
    # Numerically stable pair: q = −(c1 + sign·√disc)/2, roots q/c2 and c0/q.
    sign = jnp.where(jnp.real(jnp.conj(c1) * root) >= 0, 1.0, -1.0)
    q = -0.5 * (c1 + sign * root)
    # q = 0 only when c1 = c0 = 0: a double root at 0 (c2 = γ₁₂² > 0).
    safe_q = jnp.where(q == 0, 1.0, q)
    return jnp.stack([q / c2, jnp.where(q == 0, 0.0, c0 / safe_q)])


def exchange_current(
    model: CorrelatedBathOscillators, state: GaussianState
) -> Float[Array, "*batch"]:
    r"""Rate at which quanta flow from oscillator 2 to oscillator 1 through the exchange coupling.

    The Hamiltonian part of d⟨a₁†a₁⟩/dt is J = ig⟨a₂†a₁ − a₁†a₂⟩ = 2g Im⟨a₁†a₂⟩
    = g(⟨x₁p₂⟩ − ⟨p₁x₂⟩) (second moments, mean included); d⟨a₂†a₂⟩/dt has −J. At a steady state
    J is the heat current between the oscillators (in quanta per unit time; × ω for energy on
    resonance). The correlated channels add −ξγ₁₂ Re⟨a₁†a₂⟩ to *both* occupations: a collective
    exchange with the baths, not a flow between the oscillators.

    **Arguments:** `model`, and a ``GaussianState`` of its two modes (leading batch axes allowed).
    """
    _check_model(model)
    state = _as_state(state)
    cov, mean = state.cov, state.mean
    if cov.shape[-2:] != (4, 4) or mean.shape[-1:] != (4,):
        raise ValueError(
            f"`state` must be a two-mode GaussianState (mean (..., 4), cov (..., 4, 4)); got mean "
            f"{mean.shape} and cov {cov.shape}."
        )
    x1p2 = cov[..., 0, 3] + mean[..., 0] * mean[..., 3]
    p1x2 = cov[..., 1, 2] + mean[..., 1] * mean[..., 2]
    return model.g * (x1p2 - p1x2)


# ------------------------------------------------------------------------------- N-mode networks

_PSD_RTOL = 1e-12  # tolerance of the matrix checks (symmetry, unit diagonal, Ξ ⪰ 0)


def _site_values(cls, name: str, value, N: int) -> Array:
    """A per-oscillator parameter: a scalar or an (N,) array, checked against its declared
    bounds (:func:`qsync_jax.parameters`) and broadcast to (N,)."""
    arr = _as_real(value, f"`{name}`").astype(float)
    if arr.shape not in ((), (N,)):
        raise ValueError(
            f"`{name}` must be a scalar or have shape ({N},) (one value per oscillator); got "
            f"shape {arr.shape}."
        )
    return jnp.broadcast_to(check_parameter(cls, name, arr), (N,))


def _square(name: str, value, N: int | None = None) -> Array:
    """A real, finite, symmetric (N, N) matrix (checked when concrete)."""
    if np.iscomplexobj(value):
        raise ValueError(f"`{name}` must be real; got dtype {np.asarray(value).dtype}.")
    arr = jnp.asarray(value, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise ValueError(f"`{name}` must be a square (N, N) matrix; got shape {arr.shape}.")
    if N is not None and arr.shape[0] != N:
        raise ValueError(f"`{name}` must have shape ({N}, {N}); got shape {arr.shape}.")
    if _is_concrete(arr):
        values = np.asarray(arr)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"`{name}` (shape {arr.shape}) must be finite.")
        if np.max(np.abs(values - values.T)) > _PSD_RTOL * max(1.0, np.max(np.abs(values))):
            raise ValueError(f"`{name}` (shape {arr.shape}) must be symmetric.")
    return arr


def _check_correlation(xi_matrix: Array) -> None:
    """Ξ: unit diagonal and positive semidefinite (a correlation matrix), checked when concrete."""
    if not _is_concrete(xi_matrix):
        return
    values = np.asarray(xi_matrix)
    if np.max(np.abs(np.diag(values) - 1.0)) > _PSD_RTOL:
        raise ValueError(
            f"`correlation` (shape {values.shape}) must have a unit diagonal; got "
            f"{np.diag(values)}."
        )
    lam_min = float(np.linalg.eigvalsh(values)[0])
    if lam_min < -_PSD_RTOL * values.shape[0]:
        raise ValueError(
            f"`correlation` (shape {values.shape}) must be positive semidefinite (a correlation "
            f"matrix of the baths' noises); its smallest eigenvalue is {lam_min:.3g}."
        )


class CorrelatedBathNetwork(AbstractLinearModel):
    r"""N exchange-coupled oscillators damped into thermal baths with correlated noises.

    The N-mode form of the master equation of Bittner & Tyagi (eqs. (6)–(12); module docstring
    for N = 2):

    $$H = \sum_i \omega_i a_i^\dagger a_i + \sum_{i\ne j} g_{ij} a_i^\dagger a_j,\qquad
      \dot\rho = -i[H, \rho] + \sum_{ij}\Xi_{ij}\big(\mathcal D_{ij}[L_i, L_j]
      + \mathcal D_{ij}[L'_i, L'_j]\big)\rho,$$

    $\mathcal D_{ij}[X_i, X_j]\rho = X_i\rho X_j^\dagger - \tfrac12\{X_j^\dagger X_i, \rho\}$,
    $L_i = \sqrt{\gamma(\bar n_i+1)}\,a_i$, $L'_i = \sqrt{\gamma\bar n_i}\,a_i^\dagger$, with Ξ the
    correlation matrix of the baths' noises (dW_i dW_j = Ξ_ij dt: symmetric, unit diagonal,
    positive semidefinite). Diagonalizing Ξ = Σ_α ξ_α t_α t_αᵀ gives the independent channels
    L_α = √ξ_α Σ_i (t_α)_i L_i (eq. (7), with the eigenvector index in the right place). Exactly
    as for N = 2, with Γ↓_ij = γΞ_ij√((n̄_i+1)(n̄_j+1)), Γ↑_ij = γΞ_ij√(n̄_i n̄_j),
    G = Γ↓ − Γ↑ and h = diag(ω) + g:

    $$A = -\tfrac12 G\otimes I_2 + h\otimes J,\qquad D = \tfrac12(\Gamma^\downarrow
      + \Gamma^\uparrow)\otimes I_2,\qquad b = 0,$$

    and ⟨a⟩ obeys d⟨a⟩/dt = (−ih − ½G)⟨a⟩ (:meth:`amplitude_matrix`). For N = 2 and
    Ξ = [[1, ξ], [ξ, 1]] this is :class:`CorrelatedBathOscillators`, to the last bit.
    Collective modes v with Gv = 0 that h maps into the same null space are undamped
    (:func:`dark_modes`).
    """

    omega: Float[Array, " N"] = parameter(
        units="1/time", doc="oscillator frequencies ω_i, either sign: only differences matter")
    coupling: Float[Array, "N N"] = parameter(
        units="1/time", doc="exchange couplings g_ij (symmetric, zero diagonal: the graph)")
    gamma: Float[Array, ""] = parameter(
        lower=0.0, units="1/time", doc="damping rate γ of every oscillator (≥ 0)")
    correlation: Float[Array, "N N"] = parameter(
        lower=-1.0, upper=1.0, units="1",
        doc="Ξ: correlation matrix of the baths' noises (symmetric, unit diagonal, ⪰ 0)")
    n_th: Float[Array, " N"] = parameter(
        lower=0.0, units="quanta", doc="thermal occupations n̄_i of the baths (≥ 0)")

    def __init__(self, omega, coupling, gamma, correlation, n_th=0.0):
        """**Arguments:**

        - `coupling`: (N, N) real symmetric exchange couplings g_ij, zero diagonal (the graph).
        - `omega`: frequencies ω_i, a scalar or (N,).
        - `gamma`: damping rate γ ≥ 0 of every oscillator.
        - `correlation`: Ξ, (N, N) symmetric with unit diagonal, positive semidefinite.
        - `n_th`: bath occupations n̄_i ≥ 0, a scalar or (N,).

        Raises ``ValueError`` naming the argument for wrong shapes, complex or non-finite
        values, a non-symmetric `coupling` or one with a diagonal, γ < 0, n̄ < 0, and a
        `correlation` that is not a correlation matrix (checked when values are concrete).
        """
        self.coupling = _square("coupling", coupling)
        N = self.coupling.shape[0]
        if _is_concrete(self.coupling) and np.any(np.diag(np.asarray(self.coupling)) != 0):
            raise ValueError(
                f"`coupling` (shape {(N, N)}) must have a zero diagonal (frequencies go in "
                f"`omega`); got diagonal {np.diag(np.asarray(self.coupling))}."
            )
        cls = type(self)
        self.omega = _site_values(cls, "omega", omega, N)
        self.gamma = _parameter(cls, "gamma", gamma, False)
        correlation = _square("correlation", correlation, N)
        self.correlation = check_parameter(cls, "correlation", correlation)
        _check_correlation(self.correlation)
        self.n_th = _site_values(cls, "n_th", n_th, N)

    @property
    def n_modes(self) -> int:
        return self.coupling.shape[-1]

    def bath_occupations(self) -> Float[Array, " N"]:
        return self.n_th

    def frequency_matrix(self) -> Float[Array, "N N"]:
        """h = diag(ω) + g: H = Σ h_kl a_k† a_l."""
        return jnp.diag(self.omega) + self.coupling

    def _rates(self) -> tuple[Float[Array, "N N"], Float[Array, "N N"]]:
        """(Γ↓, Γ↑): Γ↓_ij = γ Ξ_ij √((n̄ᵢ+1)(n̄ⱼ+1)), Γ↑_ij = γ Ξ_ij √(n̄ᵢn̄ⱼ)."""
        loss, gain = jnp.sqrt(self.n_th + 1.0), jnp.sqrt(self.n_th)
        return (
            self.gamma * self.correlation * jnp.outer(loss, loss),
            self.gamma * self.correlation * jnp.outer(gain, gain),
        )

    def damping_matrix(self) -> Float[Array, "N N"]:
        """G = Γ↓ − Γ↑ = Ξ ∘ γR, R_ij = √((n̄ᵢ+1)(n̄ⱼ+1)) − √(n̄ᵢn̄ⱼ) (R_ii = 1): the dissipation.

        ⟨a⟩ decays as d⟨a⟩/dt = (−ih − ½G)⟨a⟩. At equal temperatures R_ij = 1, so G = γΞ and
        the dissipation vanishes exactly on Ξ's null space.
        """
        n = self.n_th
        R = jnp.sqrt(jnp.outer(n + 1.0, n + 1.0)) - jnp.sqrt(jnp.outer(n, n))
        eye = jnp.eye(self.n_modes, dtype=R.dtype)
        R = jnp.where(eye > 0, 1.0, R)
        return self.correlation * (self.gamma * R)

    def amplitude_matrix(self):
        """K = −ih − ½G: d⟨a⟩/dt = K⟨a⟩, complex (N, N)."""
        return jax.lax.complex(-0.5 * self.damping_matrix(), -self.frequency_matrix())

    def drift_matrix(self) -> Float[Array, "2N 2N"]:
        return _drift(self.damping_matrix(), self.frequency_matrix())

    def drive_vector(self) -> Float[Array, " 2N"]:
        return jnp.zeros(2 * self.n_modes, dtype=self.omega.dtype)

    def diffusion_matrix(self) -> Float[Array, "2N 2N"]:
        return _diffusion(*self._rates())


def correlated_bath_graph(adjacency, *, omega, g, gamma, xi, n_th=0.0) -> CorrelatedBathNetwork:
    r"""A network on a k-regular graph with Ξ = I + ξA and exchange couplings g·A (Bittner & Tyagi).

    `adjacency`: A, (N, N) symmetric 0/1 with zero diagonal and equal row sums k. Ξ's
    eigenvalues are 1 + ξλ(A) (for a ring, 1 + 2ξ cos(2πα/N), eq. (8)); Ξ ⪰ 0 requires
    −1/k ≤ ξ ≤ −1/λ_min(A), and at an end of that range one collective mode of Ξ has eigenvalue 0
    (the uniform mode at ξ = −1/k; for bipartite graphs the staggered one at ξ = 1/k). Other
    arguments as in :class:`CorrelatedBathNetwork` (`g`, `xi` scalars).
    """
    A = _square("adjacency", adjacency)
    if _is_concrete(A):
        values = np.asarray(A)
        degree = values.sum(axis=1)
        if (not np.all((values == 0) | (values == 1)) or np.any(np.diag(values) != 0)
                or not np.all(degree == degree[0])):
            raise ValueError(
                f"`adjacency` (shape {values.shape}) must be the 0/1 adjacency matrix of a "
                f"k-regular graph (zero diagonal, equal row sums); got row sums {degree}."
            )
        lam = np.linalg.eigvalsh(values)
        xi_value = np.asarray(xi, dtype=float)
        low, high = -1.0 / lam[-1], -1.0 / lam[0] if lam[0] < 0 else np.inf
        if xi_value.shape == () and np.isfinite(xi_value) and not (
            low - _PSD_RTOL <= xi_value <= high + _PSD_RTOL
        ):
            raise ValueError(
                f"`xi` = {float(xi_value)} makes Ξ = I + ξA indefinite for this graph; "
                f"it must lie in [{low:.6g}, {high:.6g}]."
            )
    g = _parameter(CorrelatedBathOscillators, "g", g, False)
    xi = _parameter(CorrelatedBathOscillators, "xi", xi, False)
    eye = jnp.eye(A.shape[0], dtype=A.dtype)
    return CorrelatedBathNetwork(
        omega=omega, coupling=g * A, gamma=gamma, correlation=eye + xi * A, n_th=n_th
    )


def correlated_bath_ring(n_sites: int, *, omega, g, gamma, xi, n_th=0.0) -> CorrelatedBathNetwork:
    """A ring of ``n_sites`` ≥ 3 oscillators (2-regular): :func:`correlated_bath_graph` of the
    cycle. Ξ ⪰ 0 needs −½ ≤ ξ ≤ ½ for even N, −½ ≤ ξ ≤ 1/(2cos(π/N)) for odd N."""
    if not isinstance(n_sites, int | np.integer) or isinstance(n_sites, bool) or n_sites < 3:
        raise ValueError(f"`n_sites` of a ring must be an integer ≥ 3; got {n_sites!r}.")
    ring = np.roll(np.eye(n_sites), 1, axis=1) + np.roll(np.eye(n_sites), -1, axis=1)
    return correlated_bath_graph(ring, omega=omega, g=g, gamma=gamma, xi=xi, n_th=n_th)


class DarkModes(NamedTuple):
    """Undamped collective modes: ⟨a⟩ ∝ v e^{−iνt} for each column v of ``amplitudes``."""

    frequencies: np.ndarray
    """(m,) frequencies ν of the dark modes."""
    amplitudes: np.ndarray
    """(N, m) complex unit vectors v (⟨a_i⟩ ∝ v_i) spanning the dark subspace."""
    dissipation_null_space: np.ndarray
    """(N, d) orthonormal basis of the null space of the dissipation G (d ≥ m)."""


def dark_modes(model: CorrelatedBathNetwork, rtol: float = 1e-10) -> DarkModes:
    r"""The undamped (dark) collective modes of a network, from the zero eigenvalues of G.

    For an eigenvector v of K = −ih − ½G with eigenvalue λ, Re λ = −½ vᴴGv/vᴴv. If G ⪰ 0 (e.g.
    equal bath temperatures, where G = γΞ) a mode is undamped iff Gv = 0: it lies in the null
    space of the dissipation *and* is an eigenvector of h there (a null vector of G that h mixes
    with damped modes still decays). Returns the null space of G (eigenvalues of G below
    ``rtol``·max|G|) and the eigenvectors of K in it with |Re λ| ≤ ``rtol``·max|λ|.

    A host-side function (NumPy, concrete values; not traceable).
    """
    if not isinstance(model, CorrelatedBathNetwork):
        raise ValueError(f"`model` must be a CorrelatedBathNetwork; got {type(model).__name__}.")
    if not (isinstance(rtol, float | int) and 0 < rtol < 1):
        raise ValueError(f"`rtol` must be a number in (0, 1); got {rtol!r}.")
    G = np.asarray(model.damping_matrix())
    g_lam, g_vec = np.linalg.eigh(G)
    null = g_vec[:, np.abs(g_lam) <= rtol * max(np.max(np.abs(g_lam)), 1e-300)]
    K = np.asarray(model.amplitude_matrix())
    lam, vec = np.linalg.eig(K)
    scale = max(np.max(np.abs(lam)), 1e-300)
    dark = np.abs(lam.real) <= rtol * scale
    vec = vec[:, dark] / np.linalg.norm(vec[:, dark], axis=0)
    return DarkModes(frequencies=-lam.imag[dark], amplitudes=vec, dissipation_null_space=null)
