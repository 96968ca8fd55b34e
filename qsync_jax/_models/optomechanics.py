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
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._gaussian import _as_real
from ._base import AbstractModel

_SQRT2 = np.sqrt(2.0)
# K of the drift's coupling term μ ⊗ K: ẋ_bj ∋ −μ_jk p_bk, ṗ_bj ∋ +μ_jk x_bk.
_COUPLING = np.zeros((4, 4))
_COUPLING[2, 3], _COUPLING[3, 2] = -1.0, 1.0

# (name, must be non-negative) for every per-site parameter, in constructor order.
_SITE_PARAMETERS = (
    ("omega", False),
    ("detuning", False),
    ("E", False),
    ("kappa", True),
    ("gamma", True),
    ("g", False),
    ("n_th", True),
)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _site_array(name: str, value, n_sites: int, nonnegative: bool) -> Float[Array, " N"]:
    """A per-site parameter given as a scalar or an (N,) array, checked and broadcast to (N,)."""
    arr = _as_real(value, f"`{name}`").astype(float)
    if arr.shape not in ((), (n_sites,)):
        raise ValueError(
            f"`{name}` must be a scalar or have shape ({n_sites},) (one value per site); "
            f"got shape {arr.shape}."
        )
    if _is_concrete(arr):
        values = np.asarray(arr)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"`{name}` must be finite; got {values} (shape {arr.shape}).")
        if nonnegative and np.any(values < 0):
            raise ValueError(f"`{name}` must be non-negative; got {values} (shape {arr.shape}).")
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


class OptomechanicalNetwork(AbstractModel):
    r"""N optomechanical sites with mechanical couplings μ_jk (module docstring for the equations).

    Every per-site parameter is an (N,) array leaf (scalars are broadcast), ``mu`` an (N, N)
    leaf: one compiled model serves any parameter values, can be vmapped over a batch of them and
    differentiated with respect to them. Modes are site-major: site j has cavity mode 2j and
    mechanical mode 2j + 1.

    **Mean-field approximation** (``mean_field_approx=True``, Mari et al. for rings): all sites
    share one classical trajectory, ⟨a_j⟩ = α(t), ⟨b_j⟩ = β(t). The integrated mean is still the
    full (4N,) vector, but ``mean_field`` computes site 0's vector field, with the coupling
    Σ_k μ_0k β, and gives it to every site, so a uniform mean stays exactly uniform. The
    fluctuations are treated exactly: ``drift`` is always the Jacobian of the full network's
    vector field (in this mode it therefore differs from the Jacobian of ``mean_field``; the two
    vector fields agree on uniform means). The mode requires uniform parameters and equal row sums
    of μ (checked on concrete values).
    """

    omega: Float[Array, " N"]
    detuning: Float[Array, " N"]
    E: Float[Array, " N"]
    kappa: Float[Array, " N"]
    gamma: Float[Array, " N"]
    g: Float[Array, " N"]
    n_th: Float[Array, " N"]
    mu: Float[Array, ""]
    coupling: Float[Array, "N N"]
    mean_field_approx: bool = eqx.field(static=True)

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
        """**Arguments** (each per-site one a scalar or an (N,) array):

        - `omega`: mechanical frequencies ω_j.
        - `kappa`, `gamma`: optical and mechanical damping rates (≥ 0).
        - `g`: optomechanical couplings.
        - `E`: drive amplitudes, in the units of eq. (9) (rate × √photons). The caption of Fig. 2
          of Mari et al. quotes E/κ: its "E = 320" is E = 48 here (docs/physics-notes.md).
        - `mu`, `coupling`: the mechanical couplings are μ_jk = mu · coupling_jk, with `mu` a
          scalar strength and `coupling` an (N, N) symmetric graph with zero diagonal (its
          weights). Given no `coupling`, `mu` may be the whole (N, N) matrix (then the strength
          is 1). Both are leaves: sweep or design the strength, or any graph entry.
        - `n_th`: mechanical bath occupations (≥ 0); the optical baths are vacuum.
        - `detuning`: laser detunings Δ_j; defaults to ω_j (the paper's choice).
        - `mean_field_approx`: share one classical trajectory between all sites (class docstring).
        """
        if coupling is None:
            self.coupling = _coupling_matrix("mu", mu)
            self.mu = jnp.ones((), dtype=self.coupling.dtype)
        else:
            self.coupling = _coupling_matrix("coupling", coupling)
            self.mu = _strength(mu)
        n_sites = self.coupling.shape[0]
        values = dict(omega=omega, detuning=omega if detuning is None else detuning, E=E,
                      kappa=kappa, gamma=gamma, g=g, n_th=n_th)
        for name, nonnegative in _SITE_PARAMETERS:
            setattr(self, name, _site_array(name, values[name], n_sites, nonnegative))
        self.mean_field_approx = bool(mean_field_approx)
        if self.mean_field_approx:
            self._check_uniform()

    def _check_uniform(self):
        for name, _ in _SITE_PARAMETERS:
            arr = getattr(self, name)
            if _is_concrete(arr) and not np.all(np.asarray(arr) == np.asarray(arr)[0]):
                raise ValueError(
                    f"`mean_field_approx=True` needs uniform parameters, but `{name}` varies "
                    f"between sites: {np.asarray(arr)} (shape {arr.shape})."
                )
        if _is_concrete(self.coupling):
            row_sums = np.asarray(self.coupling).sum(axis=1)
            if not np.allclose(row_sums, row_sums[0], rtol=1e-12, atol=0.0):
                raise ValueError(
                    f"`mean_field_approx=True` needs equal row sums of `coupling` (shape "
                    f"{self.coupling.shape}); got {row_sums}."
                )

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

    def _site_fields(self, sites, mean, coupling_x, coupling_p):
        """Vector field of ``sites`` (0, or ``slice(None)`` for all) at their (…, 4) ``mean``;
        coupling_x/p = Σ_k μ_jk x_bk / Σ_k μ_jk p_bk."""
        xa, pa, xb, pb = mean[..., 0], mean[..., 1], mean[..., 2], mean[..., 3]
        g = self.g[sites]
        kappa = self.kappa[sites]
        gamma = self.gamma[sites]
        omega = self.omega[sites]
        big_omega = self.detuning[sites] + _SQRT2 * g * xb
        return jnp.stack(
            [
                -kappa * xa - big_omega * pa + _SQRT2 * self.E[sites],
                -kappa * pa + big_omega * xa,
                -gamma * xb + omega * pb - coupling_p,
                -gamma * pb - omega * xb + coupling_x + g * (xa**2 + pa**2) / _SQRT2,
            ],
            axis=-1,
        )

    def mean_field(self, t, mean):
        """Classical vector field (module docstring); uniform in ``mean_field_approx`` mode."""
        u = mean.reshape(self.n_sites, 4)
        if self.mean_field_approx:
            row_sum = jnp.sum(self.mu_matrix[0])
            f0 = self._site_fields(0, u[0], row_sum * u[0, 2], row_sum * u[0, 3])
            return jnp.tile(f0, self.n_sites)
        sites = slice(None)
        # Σ_k μ_jk x_bk as an elementwise product and sum (fused by XLA, unlike a small dot).
        mu = self.mu_matrix
        coupling_x = jnp.sum(mu * u[:, 2], axis=1)
        coupling_p = jnp.sum(mu * u[:, 3], axis=1)
        return self._site_fields(sites, u, coupling_x, coupling_p).reshape(-1)

    def drift(self, t, mean):
        r"""Exact linearized drift of the full network at ``mean``: A = ⊕_j A_j + μ ⊗ K.

        Per site, with Ω_j = Δ_j + √2 g_j x_bj (rows/columns x_a, p_a, x_b, p_b),

        A_j = [[−κ, −Ω, −√2 g p_a, 0], [Ω, −κ, √2 g x_a, 0], [0, 0, −γ, ω],
               [√2 g x_a, √2 g p_a, −ω, −γ]],

        and K couples x_b to −p_b' and p_b to +x_b' of the other sites.
        """
        u = mean.reshape(self.n_sites, 4)
        xa, pa, xb = u[:, 0], u[:, 1], u[:, 2]
        big_omega = self.detuning + _SQRT2 * self.g * xb
        gx = _SQRT2 * self.g * xa
        gp = _SQRT2 * self.g * pa
        zero = jnp.zeros_like(xa)
        blocks = jnp.stack(
            [
                jnp.stack([-self.kappa, -big_omega, -gp, zero], axis=-1),
                jnp.stack([big_omega, -self.kappa, gx, zero], axis=-1),
                jnp.stack([zero, zero, -self.gamma, self.omega], axis=-1),
                jnp.stack([gx, gp, -self.omega, -self.gamma], axis=-1),
            ],
            axis=-2,
        )  # (N, 4, 4)
        # Elementwise products (not einsum) so that XLA fuses the assembly into one kernel.
        eye = jnp.eye(self.n_sites, dtype=blocks.dtype)
        local = eye[:, None, :, None] * blocks[:, :, None, :]
        coupling = jnp.asarray(_COUPLING, dtype=blocks.dtype)
        mixed = self.mu_matrix[:, None, :, None] * coupling[None, :, None, :]
        n = 4 * self.n_sites
        return (local + mixed).reshape(n, n)

    def diffusion(self, t, mean):
        """D = ⊕_j diag(κ_j, κ_j, γ_j(2n_th,j + 1), γ_j(2n_th,j + 1))."""
        mech = self.gamma * (2.0 * self.n_th + 1.0)
        return jnp.diag(jnp.stack([self.kappa, self.kappa, mech, mech], axis=-1).reshape(-1))

    def bath_occupations(self):
        """(2N,): 0 for each cavity (vacuum optical bath), n_th,j for each mechanical mode."""
        return jnp.stack([jnp.zeros_like(self.n_th), self.n_th], axis=-1).reshape(-1)


def optomechanical_pair(*, omega, kappa, gamma, g, E, mu, n_th=0.0, detuning=None):
    """Two optomechanical sites coupled by μ (Mari et al. 2013, eqs. (8)–(9)).

    Arguments as in :class:`OptomechanicalNetwork`, with a scalar ``mu``; per-site parameters may
    be pairs, e.g. ``omega=(1.0, 1.005)``. Modes: cavities 0 and 2, mechanics 1 and 3.
    """
    return OptomechanicalNetwork(
        omega=omega, kappa=kappa, gamma=gamma, g=g, E=E, mu=_strength(mu),
        coupling=np.array([[0.0, 1.0], [1.0, 0.0]]), n_th=n_th, detuning=detuning,
    )


def optomechanical_ring(
    n_sites: int, *, omega, kappa, gamma, g, E, mu, n_th=0.0, detuning=None,
    mean_field_approx: bool = True,
):
    """A closed ring of ``n_sites`` ≥ 3 sites with nearest-neighbour coupling μ.

    By default the classical part uses the paper's mean-field approximation (one trajectory
    shared by all sites, fluctuations exact; see :class:`OptomechanicalNetwork`), which needs
    uniform parameters; pass ``mean_field_approx=False`` to give every site its own mean field
    (and then per-site parameters of shape (n_sites,) are allowed).
    """
    if not isinstance(n_sites, (int, np.integer)) or isinstance(n_sites, bool) or n_sites < 3:
        raise ValueError(f"`n_sites` of a ring must be an integer ≥ 3; got {n_sites!r}.")
    adjacency = np.roll(np.eye(n_sites), 1, axis=1) + np.roll(np.eye(n_sites), -1, axis=1)
    return OptomechanicalNetwork(
        omega=omega, kappa=kappa, gamma=gamma, g=g, E=E, mu=_strength(mu), coupling=adjacency,
        n_th=n_th, detuning=detuning, mean_field_approx=mean_field_approx,
    )
