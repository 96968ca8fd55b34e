r"""Networks of optomechanical systems coupled through their mechanical modes (Mari et al. 2013).

Site j holds a driven cavity mode a_j and a mechanical mode b_j. The Hamiltonian (Mari et al.,
PRL 111, 103605 (2013), eq. (8), generalized to any symmetric coupling graph μ) is

$$H = \sum_j \big[-\Delta_j a_j^\dagger a_j + \omega_j b_j^\dagger b_j
      - g_j a_j^\dagger a_j (b_j + b_j^\dagger) + i E_j (a_j - a_j^\dagger)\big]
      - \tfrac12\sum_{j,k} \mu_{jk}\, (b_j^\dagger b_k + b_k^\dagger b_j),$$

and the quantum Langevin equations (eq. (9)) read

$$\dot a_j = [-\kappa_j + i\Delta_j + i g_j (b_j + b_j^\dagger)]\, a_j + E_j
             + \sqrt{2\kappa_j}\, a_j^{\rm in},$$
$$\dot b_j = (-\gamma_j - i\omega_j)\, b_j + i g_j a_j^\dagger a_j + i \sum_k \mu_{jk} b_k
             + \sqrt{2\gamma_j}\, b_j^{\rm in},$$

with a vacuum optical bath and a mechanical bath at occupation n_th,j. Eq. (9) follows from (8)
except for the sign of the drive (Heisenberg's equation gives −E_j): the two differ by the gauge
a_j → −a_j, which changes no observable of the mechanics; eq. (9) is used, as in the paper.

Mean field in real quadratures (conventions of :mod:`qsync_jax._gaussian`, site-major ordering
u = (x_{a1}, p_{a1}, x_{b1}, p_{b1}, x_{a2}, …), ⟨a⟩ = (x_a + i p_a)/√2): with
Ω_j = Δ_j + √2 g_j x_{bj},

$$\dot x_{aj} = -\kappa_j x_{aj} - \Omega_j p_{aj} + \sqrt2 E_j,\qquad
  \dot p_{aj} = -\kappa_j p_{aj} + \Omega_j x_{aj},$$
$$\dot x_{bj} = -\gamma_j x_{bj} + \omega_j p_{bj} - \sum_k \mu_{jk} p_{bk},\qquad
  \dot p_{bj} = -\gamma_j p_{bj} - \omega_j x_{bj} + \sum_k \mu_{jk} x_{bk}
                + \frac{g_j}{\sqrt2}(x_{aj}^2 + p_{aj}^2).$$

The fluctuations obey the linearization of these equations (drift A = ∂f/∂u) with diffusion
D = ⊕_j diag(κ_j, κ_j, γ_j(2n_th,j + 1), γ_j(2n_th,j + 1)).

**Parameters** (declared once in ``SITE_PARAMETERS``; :func:`qsync_jax.parameters` lists them):
rates κ, γ and occupations n_th are ≥ 0; mechanical frequencies ω ≥ 0 (lab-frame frequencies; ω = 0
is a free mass); the detuning Δ has either sign (red or blue side); the signs of E and g are
gauge choices (a → −a, b → −b) and μ may have either sign (on a bipartite graph μ → −μ with
g_j → −g_j on one sublattice is the gauge b_j → −b_j). The detuning is *derived*: unless given,
Δ_j = ω_j, computed from ``omega`` whenever it is used, so a model whose ``omega`` is replaced
(``dataclasses.replace``, ``eqx.tree_at``, sweeps) keeps Δ = ω exactly as its constructor would.
"""


import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._gaussian import _as_real
from ._base import AbstractGaussianModel, check_parameter, parameter

_SQRT2 = np.sqrt(2.0)
# K of the drift's coupling term μ ⊗ K: ẋ_bj ∋ −μ_jk p_bk, ṗ_bj ∋ +μ_jk x_bk.
COUPLING_BLOCK = np.zeros((4, 4))
COUPLING_BLOCK[2, 3], COUPLING_BLOCK[3, 2] = -1.0, 1.0

SITE_PARAMETERS = dict(
    omega=dict(lower=0.0, units="1/time",
               doc="mechanical frequency ω (lab frame, ≥ 0; ω = 0 is a free mass)"),
    detuning=dict(units="1/time",
                  doc="laser detuning Δ (either sign); None: Δ = ω, derived from omega"),
    E=dict(units="sqrt(quanta)/time",
           doc="drive amplitude E of eq. (9) (Fig. 2's 'E = 320' is E/κ, i.e. E = 48); its sign "
               "is the gauge a → −a"),
    kappa=dict(lower=0.0, units="1/time", doc="optical damping rate κ (≥ 0)"),
    gamma=dict(lower=0.0, units="1/time", doc="mechanical damping rate γ (≥ 0)"),
    g=dict(units="1/time", doc="single-photon optomechanical coupling g (its sign is the gauge "
                               "b → −b)"),
    n_th=dict(lower=0.0, units="quanta", doc="thermal occupation of the mechanical bath (≥ 0)"),
)
"""Declarations of the per-site parameters, shared by the network and the ring."""

MU = dict(units="1/time", doc="mechanical coupling strength μ (either sign; see the module "
                             "docstring)")


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _site_array(cls, name: str, value, n_sites: int) -> Float[Array, " N"]:
    """A per-site parameter given as a scalar or an (N,) array, checked and broadcast to (N,)."""
    arr = check_parameter(cls, name, value)
    if arr.shape not in ((), (n_sites,)):
        raise ValueError(
            f"`{name}` must be a scalar or have shape ({n_sites},) (one value per site); "
            f"got shape {arr.shape}."
        )
    return jnp.broadcast_to(arr, (n_sites,))


def _coupling_matrix(name: str, value) -> Float[Array, "N N"]:
    arr = jnp.asarray(value, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise ValueError(
            f"`{name}` must be a square (N, N) coupling matrix, N = number of sites; "
            f"got shape {arr.shape}."
        )
    if _is_concrete(arr):
        values = np.asarray(arr)
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"`{name}` must be finite; got shape {arr.shape} with non-finite entries."
            )
        if not np.array_equal(values, values.T):
            raise ValueError(f"`{name}` (shape {arr.shape}) must be symmetric: μ_jk = μ_kj.")
        if np.any(np.diag(values) != 0):
            raise ValueError(
                f"`{name}` (shape {arr.shape}) must have a zero diagonal (no self-coupling); "
                f"got diagonal {np.diag(values)}."
            )
    return arr


def _strength(mu) -> Float[Array, ""]:
    arr = _as_real(mu, "`mu`").astype(float)
    if arr.shape != ():
        raise ValueError(f"`mu` must be a scalar coupling strength; got shape {arr.shape}.")
    if _is_concrete(arr) and not np.isfinite(np.asarray(arr)):
        raise ValueError(f"`mu` must be finite; got {np.asarray(arr)}.")
    return arr


def detuning_of(model) -> Array:
    """Δ of a model with fields ``detuning`` (None: derived) and ``omega``: Δ = ω by default."""
    return model.omega if model.detuning is None else model.detuning


def site_fields(p, u, coupling_x, coupling_p):
    """Mean field of sites with parameters ``p`` (fields of shape (N,) or scalars) at their
    (…, 4) means ``u``; coupling_x/p = Σ_k μ_jk x_bk / Σ_k μ_jk p_bk (module docstring)."""
    xa, pa, xb, pb = u[..., 0], u[..., 1], u[..., 2], u[..., 3]
    big_omega = detuning_of(p) + _SQRT2 * p.g * xb
    return jnp.stack(
        [
            -p.kappa * xa - big_omega * pa + _SQRT2 * p.E,
            -p.kappa * pa + big_omega * xa,
            -p.gamma * xb + p.omega * pb - coupling_p,
            -p.gamma * pb - p.omega * xb + coupling_x + p.g * (xa**2 + pa**2) / _SQRT2,
        ],
        axis=-1,
    )


def site_drifts(p, u) -> Float[Array, "... 4 4"]:
    r"""Drift blocks A_j of isolated sites at their (…, 4) means (rows/columns x_a, p_a, x_b,
    p_b), with Ω_j = Δ_j + √2 g_j x_bj:

    A_j = [[−κ, −Ω, −√2 g p_a, 0], [Ω, −κ, √2 g x_a, 0], [0, 0, −γ, ω],
           [√2 g x_a, √2 g p_a, −ω, −γ]].
    """
    xa, pa, xb = u[..., 0], u[..., 1], u[..., 2]
    big_omega = detuning_of(p) + _SQRT2 * p.g * xb
    gx, gp = _SQRT2 * p.g * xa, _SQRT2 * p.g * pa
    kappa, gamma, omega = (jnp.broadcast_to(x, xa.shape) for x in (p.kappa, p.gamma, p.omega))
    zero = jnp.zeros_like(xa)
    return jnp.stack(
        [
            jnp.stack([-kappa, -big_omega, -gp, zero], axis=-1),
            jnp.stack([big_omega, -kappa, gx, zero], axis=-1),
            jnp.stack([zero, zero, -gamma, omega], axis=-1),
            jnp.stack([gx, gp, -omega, -gamma], axis=-1),
        ],
        axis=-2,
    )


def site_diffusions(p) -> Float[Array, "... 4"]:
    """Diagonals (κ, κ, γ(2n_th + 1), γ(2n_th + 1)) of the site diffusion blocks."""
    mech = p.gamma * (2.0 * p.n_th + 1.0)
    return jnp.stack([p.kappa, p.kappa, mech, mech], axis=-1)


class OptomechanicalNetwork(AbstractGaussianModel):
    r"""N optomechanical sites with mechanical couplings μ_jk (module docstring for the equations).

    Every per-site parameter is an (N,) array leaf (scalars are broadcast), ``mu`` a scalar leaf
    and ``coupling`` an (N, N) leaf: one compiled model serves any parameter values, can be
    vmapped over a batch of them and differentiated with respect to them. Modes are site-major:
    site j has cavity mode 2j and mechanical mode 2j + 1. ``detuning`` is ``None`` unless given:
    then Δ_j = ω_j (:attr:`delta`), derived from ``omega`` wherever it is used.

    Uniform rings are better served by :class:`qsync_jax.OptomechanicalRing` (what
    :func:`qsync_jax.optomechanical_ring` returns): O(N) per step instead of O(N³).
    """

    omega: Float[Array, " N"] = parameter(**SITE_PARAMETERS["omega"])
    detuning: Float[Array, " N"] | None = parameter(**SITE_PARAMETERS["detuning"])
    E: Float[Array, " N"] = parameter(**SITE_PARAMETERS["E"])
    kappa: Float[Array, " N"] = parameter(**SITE_PARAMETERS["kappa"])
    gamma: Float[Array, " N"] = parameter(**SITE_PARAMETERS["gamma"])
    g: Float[Array, " N"] = parameter(**SITE_PARAMETERS["g"])
    n_th: Float[Array, " N"] = parameter(**SITE_PARAMETERS["n_th"])
    mu: Float[Array, ""] = parameter(**MU)
    coupling: Float[Array, "N N"] = parameter(
        units="1", doc="coupling graph: symmetric (N, N) weights with zero diagonal; μ_jk = "
                       "mu · coupling_jk")

    def __init__(
        self,
        *,
        omega,
        kappa,
        gamma,
        g,
        E,
        mu,
        coupling=None,
        n_th=0.0,
        detuning=None,
        mean_field_approx: bool = False,
    ):
        """**Arguments** (each per-site one a scalar or an (N,) array; bounds and units:
        ``qs.parameters(qs.OptomechanicalNetwork)``):

        - `omega`: mechanical frequencies ω_j ≥ 0.
        - `kappa`, `gamma`: optical and mechanical damping rates (≥ 0).
        - `g`: optomechanical couplings.
        - `E`: drive amplitudes, in the units of eq. (9) (rate × √photons). The caption of Fig. 2
          of Mari et al. quotes E/κ: its "E = 320" is E = 48 here (docs/physics-notes.md).
        - `mu`, `coupling`: the mechanical couplings are μ_jk = mu · coupling_jk, with `mu` a
          scalar strength and `coupling` an (N, N) symmetric graph with zero diagonal (its
          weights). Given no `coupling`, `mu` may be the whole (N, N) matrix (then the strength
          is 1). Both are leaves: sweep or design the strength, or any graph entry.
        - `n_th`: mechanical bath occupations (≥ 0); the optical baths are vacuum.
        - `detuning`: laser detunings Δ_j; ``None`` (default) means Δ_j = ω_j (the paper's
          choice), derived from `omega` wherever it is used.
        - `mean_field_approx`: removed (``ValueError`` if true): the paper's mean-field
          approximation for rings is :func:`qsync_jax.optomechanical_ring`, an
          :class:`qsync_jax.OptomechanicalRing`.
        """
        if mean_field_approx:
            raise ValueError(
                "`mean_field_approx` of OptomechanicalNetwork was removed: the mean-field "
                "approximation of uniform rings is the model qs.optomechanical_ring(...) (an "
                "OptomechanicalRing, one shared site mean); or qs.OptomechanicalRing.from_network."
            )
        if coupling is None:
            self.coupling = _coupling_matrix("mu", mu)
            self.mu = jnp.ones((), dtype=self.coupling.dtype)
        else:
            self.coupling = _coupling_matrix("coupling", coupling)
            self.mu = _strength(mu)
        n_sites = self.coupling.shape[0]
        cls = type(self)
        self.omega = _site_array(cls, "omega", omega, n_sites)
        self.detuning = None if detuning is None else _site_array(cls, "detuning", detuning,
                                                                  n_sites)
        self.E = _site_array(cls, "E", E, n_sites)
        self.kappa = _site_array(cls, "kappa", kappa, n_sites)
        self.gamma = _site_array(cls, "gamma", gamma, n_sites)
        self.g = _site_array(cls, "g", g, n_sites)
        self.n_th = _site_array(cls, "n_th", n_th, n_sites)

    @property
    def delta(self) -> Float[Array, " N"]:
        """The laser detunings Δ_j in use: ``detuning`` if given, else ω_j."""
        return detuning_of(self)

    @property
    def n_sites(self) -> int:
        """Number of sites N."""
        return self.coupling.shape[0]

    @property
    def mu_matrix(self) -> Float[Array, "N N"]:
        """The mechanical coupling matrix μ_jk = mu · coupling_jk."""
        return self.mu * self.coupling

    @property
    def n_modes(self) -> int:
        return 2 * self.n_sites

    def mean_field(self, t, mean):
        """Classical vector field (module docstring)."""
        u = mean.reshape(self.n_sites, 4)
        # Σ_k μ_jk x_bk as an elementwise product and sum (fused by XLA, unlike a small dot).
        mu = self.mu_matrix
        coupling_x = jnp.sum(mu * u[:, 2], axis=1)
        coupling_p = jnp.sum(mu * u[:, 3], axis=1)
        return site_fields(self, u, coupling_x, coupling_p).reshape(-1)

    def drift(self, t, mean):
        r"""Linearized drift at ``mean``, written out (equal to ``jax.jacfwd`` of the mean field,
        faster): A = ⊕_j A_j + μ ⊗ K with A_j of :func:`site_drifts` and K coupling x_b to
        −p_b' and p_b to +x_b' of the other sites.
        """
        blocks = site_drifts(self, mean.reshape(self.n_sites, 4))  # (N, 4, 4)
        # Elementwise products (not einsum) so that XLA fuses the assembly into one kernel.
        eye = jnp.eye(self.n_sites, dtype=blocks.dtype)
        local = eye[:, None, :, None] * blocks[:, :, None, :]
        coupling = jnp.asarray(COUPLING_BLOCK, dtype=blocks.dtype)
        mixed = self.mu_matrix[:, None, :, None] * coupling[None, :, None, :]
        n = 4 * self.n_sites
        return (local + mixed).reshape(n, n)

    def diffusion(self, t, mean):
        """D = ⊕_j diag(κ_j, κ_j, γ_j(2n_th,j + 1), γ_j(2n_th,j + 1))."""
        return jnp.diag(site_diffusions(self).reshape(-1))

    def bath_occupations(self):
        """(2N,): 0 for each cavity (vacuum optical bath), n_th,j for each mechanical mode."""
        return jnp.stack([jnp.zeros_like(self.n_th), self.n_th], axis=-1).reshape(-1)


def optomechanical_pair(*, omega, kappa, gamma, g, E, mu, n_th=0.0, detuning=None):
    """Two optomechanical sites coupled by μ (Mari et al. 2013, eqs. (8)–(9)).

    Arguments as in :class:`OptomechanicalNetwork`, with a scalar ``mu``; per-site parameters may
    be pairs, e.g. ``omega=(1.0, 1.005)``. Modes: cavities 0 and 2, mechanics 1 and 3. The
    parameters of Fig. 2 of the paper are :data:`qsync_jax.MARI2013_FIG2`
    (``qs.optomechanical_pair(**qs.MARI2013_FIG2)``).
    """
    return OptomechanicalNetwork(
        omega=omega, kappa=kappa, gamma=gamma, g=g, E=E, mu=_strength(mu),
        coupling=np.array([[0.0, 1.0], [1.0, 0.0]]), n_th=n_th, detuning=detuning,
    )
