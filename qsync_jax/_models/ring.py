r"""Uniform optomechanical rings as a model of their own, integrated in Bloch (Fourier) modes.

:func:`optomechanical_ring` returns an :class:`OptomechanicalRing`: the paper's mean-field
approximation (one classical trajectory shared by all sites) with exact fluctuations, whose state,
a :class:`RingState`, holds the fluctuations of N sites as N//2 + 1 small blocks — O(N) memory and
work per step instead of O(N²) and O(N³). ``optomechanical_ring(..., mean_field_approx=False)``
returns the dense :class:`~qsync_jax.OptomechanicalNetwork` of the same ring instead; the
conversions are :meth:`OptomechanicalRing.to_network`, :meth:`OptomechanicalRing.from_network`,
:meth:`RingState.to_dense` and :meth:`RingState.from_dense`.

Conventions of :mod:`qsync_jax._gaussian`; every site carries d = 4 quadratures
(x_a, p_a, x_b, p_b). A ring is *translation invariant* when all sites share their parameters
and their mean field, ⟨u_j⟩ = m, and the couplings are circulant and symmetric,
μ_jk = c_{(k−j) mod N} with c_h = c_{N−h}. The linearized drift is then
A = 1_N ⊗ A_site(m) + μ ⊗ K, with A_site the drift of one isolated site and K the coupling block
per unit μ (for the optomechanical network, x_b' ∋ −Σ_k μ_jk p_bk and p_b' ∋ +Σ_k μ_jk x_bk), and
the diffusion is D = 1_N ⊗ D_site.

**Correlation blocks.** A translation-invariant covariance has blocks
C_jk = G_{(k−j) mod N} with G_h = C_{0,h} (d × d) and G_{N−h} = G_hᵀ. Blockwise,

$$\dot G_h = \sum_l a_l G_{h-l} + \sum_l G_l\, a_{l-h}^\top + \delta_{h0} D_{\rm site},
  \qquad a_h = \delta_{h0} A_{\rm site} + c_h K .$$

**Bloch blocks.** The discrete Fourier transform Ĝ(q) = Σ_h G_h e^{−iθ_q h}, θ_q = 2πq/N,
turns both convolutions into products:

$$\dot{\hat G}(q) = \hat A(q)\hat G(q) + \hat G(q)\hat A(q)^\top + D_{\rm site},\qquad
  \hat A(q) = A_{\rm site} + \lambda_q K,\quad \lambda_q = \sum_h c_h \cos\theta_q h .$$

λ_q is real because c is symmetric, so Â(q) is real; Ĝ(q) is Hermitian (G_{−h} = G_hᵀ), its
real part symmetric and its imaginary part antisymmetric, and since Â(q) is real the two parts
evolve independently:

$$\frac{d}{dt}\operatorname{Re}\hat G = \hat A\,\operatorname{Re}\hat G
  + \operatorname{Re}\hat G\,\hat A^\top + D_{\rm site},\qquad
  \frac{d}{dt}\operatorname{Im}\hat G = \hat A\,\operatorname{Im}\hat G
  + \operatorname{Im}\hat G\,\hat A^\top .$$

G real gives Ĝ(N − q) = conj Ĝ(q), so q = 0, …, N//2 hold everything: N//2 + 1 independent
4 × 4 equations instead of one 4N × 4N — a step costs O(N) instead of O(N³), memory O(N)
instead of O(N²). This is an exact change of basis, not an approximation. The real parts are
stored packed (upper triangles, d(d + 1)/2 = 10 numbers per q), the imaginary parts likewise
(strict upper triangles, 6 per q) — or not at all: a mirror-symmetric state (C_{0,h} = C_{0,−h},
e.g. the default initial state) has Im Ĝ = 0, and keeps it, the equation being homogeneous.
The mean of one site evolves with the coupling λ_0 K m (λ_0 = Σ_h c_h).

**Back to sites.** With θ_q h reduced modulo 2π,

$$G_h = \frac1N \sum_{q=0}^{\lfloor N/2\rfloor} w_q\,\big(\operatorname{Re}\hat G(q)\cos\theta_q h
  - \operatorname{Im}\hat G(q)\sin\theta_q h\big),$$

w_q = 1 for q = 0 and q = N/2, 2 otherwise: an inverse real FFT (``correlations``, all h at
O(N log N)) or a direct sum (``correlation(h)``, O(N) per distance).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._gaussian import GaussianState
from .._summary import Summary
from ._base import AbstractModel, check_parameter, parameter
from .optomechanics import (
    COUPLING_BLOCK,
    SITE_PARAMETERS,
    OptomechanicalNetwork,
    _strength,
    detuning_of,
    site_diffusions,
    site_drifts,
    site_fields,
)


def _is_concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))


def _packing(d: int):
    """Row of entry (a, b) in the packed real part (upper triangle, a ≤ b) and in the packed
    imaginary part (strict upper triangle, a < b), and the sign of the imaginary entry
    (+1 above the diagonal, −1 below, 0 on it)."""
    re_rows = np.zeros((d, d), dtype=int)
    im_rows = np.zeros((d, d), dtype=int)
    im_sign = np.zeros((d, d))
    for k, (a, b) in enumerate(zip(*np.triu_indices(d))):
        re_rows[a, b] = re_rows[b, a] = k
    for k, (a, b) in enumerate(zip(*np.triu_indices(d, 1))):
        im_rows[a, b] = im_rows[b, a] = k
        im_sign[a, b], im_sign[b, a] = 1.0, -1.0
    return re_rows, im_rows, im_sign


class RingState(Summary):
    r"""Gaussian state of a translation-invariant ring of N sites, stored in Bloch blocks.

    Fields (leading batch axes allowed, e.g. time in a trajectory; q = 0, …, N//2 on the **last**
    axis, so that the per-block d × d algebra vectorizes over q):

    - ``site_mean``: (..., d) mean of one site — every site has the same.
    - ``bloch_real``: (..., d(d + 1)/2, N//2 + 1) upper triangles (row-major, a ≤ b) of the
      symmetric Re Ĝ(q), Ĝ(q) = Σ_h C_{0,h} e^{−2πiqh/N} (module docstring).
    - ``bloch_imag``: (..., d(d − 1)/2, N//2 + 1) strict upper triangles of the antisymmetric
      Im Ĝ(q), or ``None`` when it vanishes (mirror-symmetric states, C_{0,h} = C_{0,−h}).
    - ``n_sites``: N (static).

    Memory is O(N). Site-space quantities are recovered on demand; ``modes`` selects modes of
    each site (0: cavity, 1: mechanics; default both), which keeps the cost and the output small:

    - :meth:`correlation` / :meth:`correlations`: the blocks C_{0,h} = C_{j,j+h};
    - :meth:`pair`: the ``GaussianState`` of sites 0 and h — with the default ``modes``, modes
      0, 1 are site 0's cavity and mechanics and modes 2, 3 site h's, so
      ``qs.complete_sync(s.pair(h), 1, 3)``; with ``modes=(1,)`` just the two mechanics,
      ``qs.phase_sync(s.pair(h, modes=(1,)), 0, 1)``; negativities and discords alike;
    - :meth:`reduce`: the ``GaussianState`` of any few modes of the ring, numbered as in the
      dense network (site s: cavity 2s, mechanics 2s + 1), O(N) per pair of sites. The
      measures read states through it, so ``qs.complete_sync(s, i, j)``, ``qs.phase_sync`` and
      ``qs.SyncMeasures`` work on a ``RingState`` without building the covariance of the ring;
    - :meth:`site`: the one-site ``GaussianState``; :meth:`bloch_blocks`: the complex Ĝ(q);
    - ``mean``, ``cov`` and :meth:`to_dense`: the full (..., N·d) mean and (..., N·d, N·d)
      covariance — O(N²) memory, for small rings only.
    """

    site_mean: Float[Array, "*batch d"]
    bloch_real: Float[Array, "*batch P Q"]
    bloch_imag: Float[Array, "*batch R Q"] | None
    n_sites: int = eqx.field(static=True)

    def __check_init__(self):
        n, d = self.n_sites, jnp.shape(self.site_mean)[-1]
        q = n // 2 + 1
        real = (d * (d + 1) // 2, q)
        imag = (d * (d - 1) // 2, q)
        if (
            n < 3
            or jnp.shape(self.bloch_real)[-2:] != real
            or (self.bloch_imag is not None and jnp.shape(self.bloch_imag)[-2:] != imag)
        ):
            raise ValueError(
                f"RingState needs n_sites ≥ 3, `bloch_real` of trailing shape {real} and "
                f"`bloch_imag` of trailing shape {imag} (or None) for `site_mean` of shape "
                f"{jnp.shape(self.site_mean)}; got n_sites = {n}, `bloch_real` of shape "
                f"{jnp.shape(self.bloch_real)} and `bloch_imag` of shape "
                f"{None if self.bloch_imag is None else jnp.shape(self.bloch_imag)}."
            )

    @property
    def n_modes(self) -> int:
        """Modes of the whole ring: N·d/2."""
        return self.n_sites * self.site_mean.shape[-1] // 2

    def reduce(self, modes) -> GaussianState:
        """The ``GaussianState`` of ``modes`` (ring modes, site-major: site s has modes
        d/2·s, …), in the order given: blocks C_{s_a,s_b} = C_{0,(s_b − s_a) mod N} from
        :meth:`correlation`, O(N) per distinct site distance — the ring is never densified."""
        modes = (modes,) if isinstance(modes, (int, np.integer)) else tuple(modes)
        n_local = self.site_mean.shape[-1] // 2
        if (
            not modes
            or not all(isinstance(m, (int, np.integer)) and 0 <= m < self.n_modes for m in modes)
            or len(set(modes)) != len(modes)
        ):
            raise ValueError(
                f"`modes` must be distinct mode indices in [0, {self.n_modes}) of a ring of "
                f"{self.n_sites} sites; got {modes!r}."
            )
        sites = [int(m) // n_local for m in modes]
        local = [2 * (int(m) % n_local) for m in modes]
        k = range(len(modes))
        # C_{s_b,s_a} = C_{s_a,s_b}ᵀ: only the blocks with a ≤ b are summed.
        distances = sorted({(sites[b] - sites[a]) % self.n_sites for a in k for b in k if a <= b})
        blocks = self.correlation(np.asarray(distances))  # (..., H, d, d)
        row = {h: i for i, h in enumerate(distances)}

        def block(a, b):
            if a > b:
                return jnp.swapaxes(block(b, a), -1, -2)
            h = row[(sites[b] - sites[a]) % self.n_sites]
            return blocks[..., h, local[a] : local[a] + 2, local[b] : local[b] + 2]

        cov = jnp.concatenate(
            [jnp.concatenate([block(a, b) for b in k], axis=-1) for a in k], axis=-2
        )
        mean = jnp.concatenate([self.site_mean[..., x : x + 2] for x in local], axis=-1)
        return GaussianState(mean=mean, cov=cov)

    def _quadratures(self, modes) -> np.ndarray:
        """Quadrature indices (x, p of each selected mode) of one site."""
        n_local = self.site_mean.shape[-1] // 2
        if modes is None:
            return np.arange(2 * n_local)
        if (
            not isinstance(modes, tuple)
            or not modes
            or any(not isinstance(m, (int, np.integer)) or not 0 <= m < n_local for m in modes)
            or len(set(modes)) != len(modes)
        ):
            raise ValueError(
                f"`modes` must be a non-empty tuple of distinct site modes in [0, {n_local}) "
                f"(0: cavity, 1: mechanics); got {modes!r}."
            )
        return np.stack([2 * np.asarray(modes), 2 * np.asarray(modes) + 1], axis=-1).ravel()

    def _blocks(self, modes):
        """Re Ĝ(q) and Im Ĝ(q) (``None`` if zero) of the selected quadratures, (..., k, k, Q)."""
        idx = self._quadratures(modes)
        re_rows, im_rows, im_sign = _packing(self.site_mean.shape[-1])
        sub = np.ix_(idx, idx)
        re = self.bloch_real[..., re_rows[sub], :]
        if self.bloch_imag is None:
            return re, None
        sign = jnp.asarray(im_sign[sub][:, :, None], dtype=re.dtype)
        return re, sign * self.bloch_imag[..., im_rows[sub], :]

    def bloch_blocks(self, modes: tuple[int, ...] | None = None):
        """The Bloch blocks Ĝ(q), q = 0, …, N//2, as a complex (..., k, k, N//2 + 1) array."""
        re, im = self._blocks(modes)
        return jax.lax.complex(re, jnp.zeros_like(re) if im is None else im)

    def correlation(self, h, modes: tuple[int, ...] | None = None) -> Float[Array, "*batch k k"]:
        """C_{0,h} = C_{j,j+h} for a distance ``h`` (an integer, or a 1-D array of them).

        A direct sum over the Bloch blocks (module docstring), O(N) per distance — for a few
        distances; :meth:`correlations` gives all of them by FFT. Any integer works (C_{0,h} is
        N-periodic in h and C_{0,−h} = C_{0,h}ᵀ). ``modes`` restricts to those site modes
        (k = 2·len(modes) quadratures). With an array of H distances the result has shape
        (..., H, k, k). Pass distances as Python or NumPy integers: they are then checked and
        their phases computed once, not at every step of a solve.
        """
        h = np.asarray(h) if _is_concrete(h) else h  # lists, ranges, Python ints
        if jnp.ndim(h) > 1 or not jnp.issubdtype(jnp.result_type(h), jnp.integer):
            raise ValueError(f"`h` must be an integer or a 1-D integer array; got {h!r}.")
        re, im = self._blocks(modes)
        n = self.n_sites
        # Phases θ_q h with q·h reduced modulo N in integers (exact for large rings).
        xp = np if _is_concrete(h) else jnp
        q = xp.arange(n // 2 + 1)
        phase = xp.mod(xp.atleast_1d(xp.asarray(h))[:, None] * q, n).astype(re.dtype)
        theta = (2.0 * np.pi / n) * phase
        w = np.full(n // 2 + 1, 2.0 / n)
        w[0] = 1.0 / n
        if n % 2 == 0:
            w[-1] = 1.0 / n
        w = xp.asarray(w, dtype=re.dtype)
        blocks = jnp.einsum("kq,...abq->...kab", jnp.asarray(w * xp.cos(theta)), re)
        if im is not None:
            sin_w = jnp.asarray(w * xp.sin(theta))
            blocks = blocks - jnp.einsum("kq,...abq->...kab", sin_w, im)
        return blocks if jnp.ndim(h) == 1 else blocks[..., 0, :, :]

    def _all_correlations(self) -> Float[Array, "*batch N d d"]:
        # irfft completes Ĝ(N − q) = conj Ĝ(q).
        full = jnp.fft.irfft(self.bloch_blocks(), n=self.n_sites, axis=-1)
        return jnp.moveaxis(full, -1, -3)

    def correlations(self) -> Float[Array, "*batch Q d d"]:
        """C_{0,h} for h = 0, …, N//2 (the rest follow from C_{0,N−h} = C_{0,h}ᵀ); inverse FFT,
        O(N log N)."""
        return self._all_correlations()[..., : self.n_sites // 2 + 1, :, :]

    def site(self) -> GaussianState:
        """The state of one site: mean (..., d) and covariance C_{0,0} (..., d, d)."""
        return GaussianState(mean=self.site_mean, cov=self.correlation(0))

    def pair(self, h, modes: tuple[int, ...] | None = None) -> GaussianState:
        """``GaussianState`` of sites 0 and ``h`` (1 ≤ h ≤ N − 1, or a 1-D array of them).

        Modes: the selected ``modes`` of site 0 (default all: cavity, mechanics), then the same
        of site h. With an array of H distances the pair axis comes after the batch axes:
        mean (..., H, 2k), cov (..., H, 2k, 2k).
        """
        h = np.asarray(h) if _is_concrete(h) else h  # lists, ranges, Python ints
        if _is_concrete(h) and jnp.ndim(h) <= 1:
            bad = np.atleast_1d(h)
            bad = bad[(bad < 1) | (bad >= self.n_sites)]
            if bad.size:
                raise ValueError(
                    f"`h` must lie in [1, {self.n_sites - 1}] for a ring of {self.n_sites} "
                    f"sites; got {np.asarray(h)} (shape {np.shape(h)})."
                )
        c_h = self.correlation(h, modes)
        c_0 = self.correlation(0, modes)
        m = self.site_mean[..., self._quadratures(modes)]
        if jnp.ndim(h) == 1:
            c_0 = jnp.broadcast_to(c_0[..., None, :, :], c_h.shape)
            m = m[..., None, :]
        cov = jnp.concatenate(
            [
                jnp.concatenate([c_0, c_h], axis=-1),
                jnp.concatenate([jnp.swapaxes(c_h, -1, -2), c_0], axis=-1),
            ],
            axis=-2,
        )
        mean = jnp.broadcast_to(jnp.concatenate([m, m], axis=-1), cov.shape[:-1])
        return GaussianState(mean=mean, cov=cov)

    @property
    def mean(self) -> Float[Array, "*batch Nd"]:
        """Mean of the whole ring (..., N·d): ``site_mean`` repeated on every site."""
        reps = (1,) * (self.site_mean.ndim - 1) + (self.n_sites,)
        return jnp.tile(self.site_mean, reps)

    @property
    def cov(self) -> Float[Array, "*batch Nd Nd"]:
        """Covariance of the whole ring (..., N·d, N·d), blocks C_jk = C_{0,(k−j) mod N}."""
        n, d = self.n_sites, self.site_mean.shape[-1]
        full = self._all_correlations()
        index = np.mod(np.arange(n)[None, :] - np.arange(n)[:, None], n)
        blocks = full[..., index, :, :]  # (..., j, k, a, b)
        return jnp.swapaxes(blocks, -3, -2).reshape(*blocks.shape[:-4], n * d, n * d)

    def to_dense(self) -> GaussianState:
        """The full ``GaussianState`` of the ring (O(N²) memory)."""
        return GaussianState(mean=self.mean, cov=self.cov)

    @classmethod
    def from_dense(cls, state: GaussianState, n_sites: int) -> "RingState":
        """The ``RingState`` of a translation-invariant dense ``state`` of ``n_sites`` sites.

        Raises ``ValueError`` (on concrete values) when the state is not translation invariant:
        equal site means and C_jk = C_{0,(k−j) mod N}, to 1e-10 of the largest entry.
        """
        mean, cov = jnp.asarray(state.mean), jnp.asarray(state.cov)
        if not isinstance(n_sites, (int, np.integer)) or n_sites < 3:
            raise ValueError(f"`n_sites` must be an integer ≥ 3; got {n_sites!r}.")
        dim = mean.shape[-1]
        if dim % n_sites or cov.shape[-2:] != (dim, dim):
            raise ValueError(
                f"`state` must have mean (..., N·d) and cov (..., N·d, N·d) for N = {n_sites} "
                f"sites; got mean {mean.shape} and cov {cov.shape}."
            )
        d = dim // n_sites
        # row[..., a, h, b] = C_{0,h}[a, b]
        row = cov[..., :d, :].reshape(*cov.shape[:-2], d, n_sites, d)
        transform = jnp.fft.rfft(jnp.swapaxes(row, -2, -1), axis=-1)  # Ĝ[..., a, b, q]
        upper, strict = np.triu_indices(d), np.triu_indices(d, 1)
        ring = cls(
            site_mean=mean[..., :d],
            bloch_real=transform.real[..., upper[0], upper[1], :],
            bloch_imag=transform.imag[..., strict[0], strict[1], :],
            n_sites=int(n_sites),
        )
        if _is_concrete(mean, cov):
            scale = max(float(np.max(np.abs(cov))), float(np.max(np.abs(mean))), 1.0)
            if not (
                np.allclose(ring.mean, mean, rtol=0.0, atol=1e-10 * scale)
                and np.allclose(ring.cov, cov, rtol=0.0, atol=1e-10 * scale)
            ):
                raise ValueError(
                    f"`state` (mean {mean.shape}, cov {cov.shape}) is not translation invariant "
                    f"over {n_sites} sites: site means or blocks C_jk ≠ C_{{0,(k−j) mod N}}."
                )
        return ring


def _ring_violation(network: OptomechanicalNetwork) -> str | None:
    """Why ``network`` is not a translation-invariant ring (None when it is).

    Only concrete values are checked; traced values pass. Row by row, so no N × N temporaries.
    """
    n = network.n_sites
    if n < 3:
        return f"a ring needs n_sites ≥ 3; got {n}"
    for name in SITE_PARAMETERS:
        value = getattr(network, name)
        if value is None:
            continue
        if _is_concrete(value) and not np.all(np.asarray(value) == np.asarray(value)[0]):
            return f"`{name}` varies between sites: {np.asarray(value)} (shape {value.shape})"
    if _is_concrete(network.mu_matrix):
        mu = np.asarray(network.mu_matrix)
        if not all(np.array_equal(mu[j], np.roll(mu[0], j)) for j in range(n)):
            return f"`mu` (shape {mu.shape}) is not circulant: μ_jk ≠ μ_0,(k−j) mod N"
    return None


def _check_n_sites(n_sites) -> int:
    if not isinstance(n_sites, (int, np.integer)) or isinstance(n_sites, bool) or n_sites < 3:
        raise ValueError(f"`n_sites` of a ring must be an integer ≥ 3; got {n_sites!r}.")
    return int(n_sites)


class OptomechanicalRing(AbstractModel):
    r"""A uniform ring of N optomechanical sites, integrated in Bloch blocks (module docstring).

    Site j obeys the equations of :class:`~qsync_jax.OptomechanicalNetwork` (Mari et al. 2013,
    eqs. (8)–(9)) with the same parameters on every site and circulant couplings
    μ_jk = c_{(k−j) mod N}: nearest neighbours (``mu`` a scalar) or any symmetric profile.

    **The mean-field approximation** of Mari et al. for rings is this model's choice of state:
    every site shares one classical trajectory (``RingState.site_mean``), whose vector field is
    the site's own with the coupling λ₀ K m (:meth:`mean_field`). Its Jacobian is the q = 0
    Bloch block of the drift, and every Bloch block Â(q) = A_site(m) + λ_q K of :meth:`drift` is
    the exact linearization of the full network at the uniform mean (the drift contract,
    checked in tests against ``jax.jacfwd`` of the network's mean field). For a uniform initial
    mean the full network keeps its mean uniform too, so the ring is then exact; what it leaves
    out is a spontaneous breaking of the translation symmetry of the mean field (the dense
    network, :meth:`to_network`, keeps it). The fluctuations are exact.

    The state is a :class:`RingState` (O(N) memory); ``evolve``, ``time_average`` and ``sweep``
    return it eagerly, under ``jit`` and under ``vmap`` alike. Nothing of size N × N is built,
    so rings of 10⁴ sites and more fit in memory.
    """

    omega: Float[Array, ""] = parameter(**SITE_PARAMETERS["omega"])
    detuning: Float[Array, ""] | None = parameter(**SITE_PARAMETERS["detuning"])
    E: Float[Array, ""] = parameter(**SITE_PARAMETERS["E"])
    kappa: Float[Array, ""] = parameter(**SITE_PARAMETERS["kappa"])
    gamma: Float[Array, ""] = parameter(**SITE_PARAMETERS["gamma"])
    g: Float[Array, ""] = parameter(**SITE_PARAMETERS["g"])
    n_th: Float[Array, ""] = parameter(**SITE_PARAMETERS["n_th"])
    mu: Float[Array, "*H"] = parameter(
        units="1/time", doc="nearest-neighbour coupling μ (a scalar), or the coupling profile "
                            "(c_1, …, c_N//2) of shape (N//2,); either sign")
    n_sites: int = eqx.field(static=True)

    def __init__(
        self, n_sites: int, *, omega, kappa, gamma, g, E, mu, n_th=0.0, detuning=None
    ):
        """**Arguments** (site parameters are scalars, as in :class:`OptomechanicalNetwork`;
        bounds and units: ``qs.parameters(qs.OptomechanicalRing)``):

        - `n_sites`: N ≥ 3.
        - `omega`, `kappa`, `gamma`, `g`, `E`, `n_th`, `detuning`: the site parameters
          (`detuning` ``None``: Δ = ω, derived from `omega` wherever it is used).
        - `mu`: a scalar — nearest-neighbour coupling, as :func:`qsync_jax.optomechanical_ring`
          — or the coupling profile (c_1, …, c_{N//2}) of shape (N//2,): site j couples to
          sites j ± h with c_h (for even N, c_{N/2} couples antipodes once).
        """
        self.n_sites = _check_n_sites(n_sites)
        values = dict(omega=omega, detuning=detuning, E=E, kappa=kappa, gamma=gamma, g=g,
                      n_th=n_th)
        for name, value in values.items():
            if value is None:
                setattr(self, name, None)
                continue
            if jnp.shape(value) != ():
                raise ValueError(
                    f"`{name}` of an OptomechanicalRing must be a scalar (all sites equal); got "
                    f"shape {jnp.shape(value)}. Non-uniform rings are OptomechanicalNetworks "
                    f"(optomechanical_ring(..., mean_field_approx=False))."
                )
            setattr(self, name, check_parameter(type(self), name, value))
        mu = jnp.asarray(mu, dtype=float)
        half = self.n_sites // 2
        if mu.shape not in ((), (half,)):
            raise ValueError(
                f"`mu` must be a scalar (nearest neighbours) or the profile (c_1, …, c_N//2) of "
                f"shape ({half},) for {self.n_sites} sites; got shape {mu.shape}."
            )
        self.mu = check_parameter(type(self), "mu", mu)

    @classmethod
    def from_network(cls, network: OptomechanicalNetwork) -> "OptomechanicalRing":
        """The ring model of ``network``; ``ValueError`` unless it is a translation-invariant
        ring (≥ 3 sites, uniform parameters, circulant μ; checked on concrete values only)."""
        if not isinstance(network, OptomechanicalNetwork):
            raise ValueError(
                f"`network` must be an OptomechanicalNetwork; got {type(network).__name__}."
            )
        violation = _ring_violation(network)
        if violation is not None:
            raise ValueError(f"`network` is not a translation-invariant ring: {violation}.")
        n = network.n_sites
        params = {name: getattr(network, name) for name in SITE_PARAMETERS}
        params = {k: None if v is None else v[0] for k, v in params.items()}
        return cls(n, **params, mu=network.mu_matrix[0, 1 : n // 2 + 1])

    def to_network(self) -> OptomechanicalNetwork:
        """The same ring as a dense :class:`OptomechanicalNetwork` (O(N²) memory, O(N³) per step;
        no mean-field approximation)."""
        params = {name: getattr(self, name) for name in SITE_PARAMETERS}
        return OptomechanicalNetwork(**params, mu=1.0, coupling=self._circulant_row()[
            np.mod(np.arange(self.n_sites)[None, :] - np.arange(self.n_sites)[:, None],
                   self.n_sites)])

    @property
    def n_modes(self) -> int:
        return 2 * self.n_sites

    @property
    def delta(self) -> Float[Array, ""]:
        """The laser detuning Δ in use: ``detuning`` if given, else ω."""
        return detuning_of(self)

    def _circulant_row(self) -> Float[Array, " N"]:
        """c_h, h = 0, …, N − 1: c_0 = 0, c_h = c_{N−h} = profile[h − 1]."""
        n, half, dtype = self.n_sites, self.n_sites // 2, self.mu.dtype
        profile = jnp.zeros(half, dtype).at[0].set(self.mu) if self.mu.ndim == 0 else self.mu
        tail = profile[: (n - 1) // 2][::-1]
        return jnp.concatenate([jnp.zeros(1, dtype), profile, tail])

    @property
    def bloch_couplings(self) -> Float[Array, " Q"]:
        """λ_q = Σ_h c_h cos(2πqh/N), q = 0, …, N//2: the eigenvalues of μ (real: μ symmetric)."""
        return jnp.fft.rfft(self._circulant_row()).real

    def mean_field(self, t, site_mean: Float[Array, " 4"]) -> Float[Array, " 4"]:
        """Vector field of the shared site mean m: the site's own plus the coupling λ₀ K m."""
        lam0 = jnp.sum(self._circulant_row())
        return site_fields(self, site_mean, lam0 * site_mean[2], lam0 * site_mean[3])

    def drift(self, t, site_mean: Float[Array, " 4"]) -> Float[Array, "Q 4 4"]:
        """Bloch blocks of the drift, Â(q) = A_site(m) + λ_q K (Â(0) = ∂ mean_field/∂m)."""
        lam = self.bloch_couplings
        k = jnp.asarray(COUPLING_BLOCK, lam.dtype)
        return site_drifts(self, site_mean) + lam[:, None, None] * k

    def diffusion(self, t, site_mean) -> Float[Array, "4 4"]:
        """Diffusion of one site, D_site = diag(κ, κ, γ(2n_th + 1), γ(2n_th + 1))."""
        return jnp.diag(site_diffusions(self))

    def bath_occupations(self) -> Float[Array, " 2N"]:
        """(2N,): 0 for each cavity (vacuum optical bath), n_th for each mechanical mode."""
        site = jnp.stack([jnp.zeros_like(self.n_th), self.n_th])
        return jnp.tile(site, self.n_sites)

    def initial_state(self) -> "RingState":
        """Zero mean, each mode thermal at its bath's occupation (as the dense default)."""
        var = jnp.stack([0.5, 0.5, self.n_th + 0.5, self.n_th + 0.5]).astype(self.kappa.dtype)
        upper = np.triu_indices(4)
        return RingState(
            site_mean=jnp.zeros_like(var),
            bloch_real=jnp.broadcast_to(jnp.diag(var)[upper][:, None],
                                        (10, self.n_sites // 2 + 1)),
            bloch_imag=None,
            n_sites=self.n_sites,
        )

    def check_state(self, state, name: str = "state0") -> None:
        """``ValueError`` unless ``state`` is a finite :class:`RingState` of this ring (a dense
        ``GaussianState`` is refused: convert it with :meth:`RingState.from_dense`)."""
        q = self.n_sites // 2 + 1
        if (
            not isinstance(state, RingState)
            or state.n_sites != self.n_sites
            or jnp.shape(state.site_mean) != (4,)
            or jnp.shape(state.bloch_real) != (10, q)
            or (state.bloch_imag is not None and jnp.shape(state.bloch_imag) != (6, q))
        ):
            got = state if isinstance(state, RingState) else type(state).__name__
            raise ValueError(
                f"{name} of an OptomechanicalRing must be a RingState of {self.n_sites} sites "
                f"with site_mean of shape (4,), bloch_real of shape (10, {q}) and bloch_imag of "
                f"shape (6, {q}) or None (convert a dense state with "
                f"qs.RingState.from_dense(state, {self.n_sites})); got {got!r}."
            )
        if _is_concrete(state) and not all(
            np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(state)
        ):
            raise ValueError(f"{name} has non-finite entries.")

    def vector_field(self, t, y: "RingState") -> "RingState":
        """d/dt of the site mean and of every Bloch block (module docstring):
        d Re Ĝ = Â Re Ĝ + Re Ĝ Âᵀ + D_site and d Im Ĝ = Â Im Ĝ + Im Ĝ Âᵀ, entry by entry of the
        packed triangles.

        The 4 × 4 products are written out as sums of vectors over q (the last axis), which
        vectorizes far better than a batch of tiny matrix products.
        """
        d, m, lam = 4, y.site_mean, self.bloch_couplings
        a_site, k = site_drifts(self, m), COUPLING_BLOCK
        drift = [[a_site[a, b] + k[a, b] * lam for b in range(d)] for a in range(d)]  # Â_ab(q)
        re_rows, im_rows, im_sign = _packing(d)

        def lyapunov(packed, rows, sign, pairs):
            """(Â X + X Âᵀ)_ab for (a, b) in pairs, X_ab = sign_ab · packed[rows_ab]."""

            def x(a, b):
                return packed[rows[a, b]] if sign[a, b] > 0 else -packed[rows[a, b]]

            out = []
            for a, b in pairs:
                terms = [drift[a][c] * x(c, b) for c in range(d) if sign[c, b]]
                terms += [x(a, c) * drift[b][c] for c in range(d) if sign[a, c]]
                out.append(sum(terms))
            return jnp.stack(out)

        ones = np.ones((d, d))
        upper = np.triu_indices(d)
        diffusion = self.diffusion(t, m)[upper][:, None]
        real = lyapunov(y.bloch_real, re_rows, ones, list(zip(*upper))) + diffusion
        imag = None
        if y.bloch_imag is not None:
            imag = lyapunov(y.bloch_imag, im_rows, im_sign, list(zip(*np.triu_indices(d, 1))))
        return RingState(
            site_mean=self.mean_field(t, m),
            bloch_real=real,
            bloch_imag=imag,
            n_sites=self.n_sites,
        )


def optomechanical_ring(
    n_sites: int, *, omega, kappa, gamma, g, E, mu, n_th=0.0, detuning=None,
    mean_field_approx: bool = True,
):
    """A closed ring of ``n_sites`` ≥ 3 sites with nearest-neighbour coupling μ.

    By default (``mean_field_approx=True``) an :class:`OptomechanicalRing`: the paper's
    mean-field approximation (one classical trajectory shared by all sites), exact fluctuations,
    integrated in Bloch blocks at O(N) per step; its parameters must be uniform (scalars, or equal
    per-site values). With ``mean_field_approx=False`` the dense
    :class:`~qsync_jax.OptomechanicalNetwork` of the ring: every site its own mean field, per-site
    parameters of shape (n_sites,) allowed, O(N³) per step. The choice is made here, once: the
    integrators take any model as it is.
    """
    n_sites = _check_n_sites(n_sites)
    mu = _strength(mu)
    params = dict(omega=omega, kappa=kappa, gamma=gamma, g=g, E=E, n_th=n_th, detuning=detuning)
    if not mean_field_approx:
        adjacency = np.roll(np.eye(n_sites), 1, axis=1) + np.roll(np.eye(n_sites), -1, axis=1)
        return OptomechanicalNetwork(**params, mu=mu, coupling=adjacency)
    for name, value in params.items():
        if value is None or np.ndim(value) == 0 or not _is_concrete(value):
            continue
        values = np.asarray(value, dtype=float)
        if values.shape != (n_sites,) or not np.all(values == values[0]):
            raise ValueError(
                f"`{name}` varies between sites or has the wrong shape: {values} (shape "
                f"{values.shape}); the mean-field ring needs uniform parameters — pass "
                f"`mean_field_approx=False` for a non-uniform ring (a dense network)."
            )
        params[name] = values[0]
    return OptomechanicalRing(n_sites, **params, mu=mu)
