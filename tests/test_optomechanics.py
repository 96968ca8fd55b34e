"""Optomechanical networks (Mari et al. 2013, eqs. (8)–(9)).

References: jacfwd of the mean field (drift), the complex Langevin equations (9) and Hamilton's
equations of the classical Hamiltonian (8) (mean field), the closed-form linear solution
(expm, Van Loan integral) and scipy's Lyapunov solver at g = 0, the uncertainty principle along
trajectories, finite differences for gradients.
"""

import functools

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from helpers import finite_difference_grad, tree_allclose

import qsync_jax as qs

PAPER = dict(qs.MARI2013_FIG2)


def _random_network(rng, n_sites, **overrides):
    mu = rng.normal(size=(n_sites, n_sites)) * 0.05
    mu = np.triu(mu, 1)
    params = dict(
        omega=1.0 + 0.1 * rng.random(n_sites),
        detuning=1.0 + 0.1 * rng.normal(size=n_sites),
        E=rng.uniform(1.0, 50.0, n_sites),
        kappa=rng.uniform(0.05, 0.3, n_sites),
        gamma=rng.uniform(0.001, 0.05, n_sites),
        g=rng.uniform(0.001, 0.01, n_sites),
        n_th=rng.uniform(0.0, 5.0, n_sites),
        mu=mu + mu.T,
    )
    params.update(overrides)
    return qs.OptomechanicalNetwork(**params)


def _models(rng):
    return {
        "pair": qs.optomechanical_pair(**PAPER),
        "ring": qs.optomechanical_ring(5, **{**PAPER, "omega": 1.0}, mean_field_approx=False),
        "graph": _random_network(rng, 4),
    }


def test_drift_is_jacobian_of_mean_field():
    rng = np.random.default_rng(0)
    jacobian = jax.jit(lambda m, u: jax.jacfwd(m.mean_field, argnums=1)(0.0, u))
    for name, model in _models(rng).items():
        for _ in range(3):
            mean = jnp.asarray(rng.normal(size=2 * model.n_modes) * 300)
            expected = jacobian(model, mean)
            assert tree_allclose(model.drift(0.0, mean), expected, rtol=1e-13, atol=1e-14), name


def test_mean_field_matches_complex_langevin_equations():
    """Eq. (9) for ⟨a_j⟩, ⟨b_j⟩ as complex numbers, with ⟨a†a⟩ → |α|² (mean field)."""
    rng = np.random.default_rng(1)
    model = _random_network(rng, 3)
    names = ("omega", "detuning", "E", "kappa", "gamma", "g")
    p = {k: np.asarray(getattr(model, k)) for k in names}
    mu = np.asarray(model.mu_matrix)
    u = rng.normal(size=12) * 100
    alpha = (u[0::4] + 1j * u[1::4]) / np.sqrt(2)
    beta = (u[2::4] + 1j * u[3::4]) / np.sqrt(2)
    dalpha = (-p["kappa"] + 1j * p["detuning"] + 1j * p["g"] * 2 * beta.real) * alpha + p["E"]
    dbeta = (-p["gamma"] - 1j * p["omega"]) * beta + 1j * p["g"] * abs(alpha) ** 2 + 1j * mu @ beta
    expected = np.sqrt(2) * np.stack(
        [dalpha.real, dalpha.imag, dbeta.real, dbeta.imag], axis=1
    ).ravel()
    assert np.allclose(model.mean_field(0.0, jnp.asarray(u)), expected, rtol=1e-12)


def test_lossless_mean_field_is_hamiltonian_flow():
    """κ = γ = 0: f = Ω ∇H_cl with H_cl the classical Hamiltonian (8), up to the drive's sign.

    Heisenberg's equation from (8) gives ȧ = … − E, eq. (9) has + E; they differ by a → −a.
    """
    rng = np.random.default_rng(2)
    model = _random_network(rng, 3, kappa=0.0, gamma=0.0)
    flipped = eqx.tree_at(lambda m: m.E, model, -model.E)

    def hamiltonian(u):
        u = u.reshape(-1, 4)
        xa, pa, xb, pb = u.T
        na = (xa**2 + pa**2) / 2
        h = -model.detuning * na + model.omega * (xb**2 + pb**2) / 2
        h = h - model.g * na * np.sqrt(2) * xb - np.sqrt(2) * model.E * pa
        coupling = -0.5 * (xb @ model.mu_matrix @ xb + pb @ model.mu_matrix @ pb)
        return jnp.sum(h) + coupling

    symplectic = jnp.kron(jnp.eye(6), jnp.asarray([[0.0, 1.0], [-1.0, 0.0]]))
    for _ in range(3):
        u = jnp.asarray(rng.normal(size=12) * 50)
        expected = symplectic @ jax.grad(hamiltonian)(u)
        assert np.allclose(flipped.mean_field(0.0, u), expected, rtol=1e-12, atol=1e-9)


def test_mean_field_approximation_for_uniform_rings():
    """The ring model shares one site mean (the paper's approximation); its drift is exact."""
    rng = np.random.default_rng(3)
    params = {**PAPER, "omega": 1.0}
    approx = qs.optomechanical_ring(4, **params)
    exact = qs.optomechanical_ring(4, **params, mean_field_approx=False)
    assert isinstance(approx, qs.OptomechanicalRing)
    assert isinstance(exact, qs.OptomechanicalNetwork)
    m = jnp.asarray(rng.normal(size=4) * 300)
    uniform = jnp.tile(m, 4)
    # Drift contract: the q = 0 Bloch block is the Jacobian of the ring's own mean field, and
    # every block is the full network's Jacobian at the uniform mean, Fourier transformed.
    blocks = np.asarray(approx.drift(0.0, m))
    assert tree_allclose(blocks[0], jax.jacfwd(approx.mean_field, argnums=1)(0.0, m), rtol=1e-13)
    full = np.asarray(jax.jacfwd(exact.mean_field, argnums=1)(0.0, uniform))
    row = np.stack([full[:4, 4 * h : 4 * h + 4] for h in range(4)])
    fourier = np.fft.fft(row, axis=0)[:3]
    assert np.allclose(fourier.imag, 0.0, atol=1e-12)
    assert tree_allclose(blocks, fourier.real, rtol=1e-13, atol=1e-12)
    # On uniform means both fields agree.
    f_exact = np.asarray(exact.mean_field(0.0, uniform)).reshape(4, 4)
    assert tree_allclose(approx.mean_field(0.0, m), f_exact[0], rtol=1e-13)
    assert np.all(f_exact == f_exact[0])
    # Along a trajectory both models agree (the exact network keeps a uniform mean uniform).
    ts = jnp.linspace(10.0, 60.0, 3)
    t_approx = qs.evolve(approx, ts).states
    t_exact = qs.evolve(exact, ts).states
    assert isinstance(t_approx, qs.RingState)
    assert tree_allclose(t_approx.to_dense(), t_exact, rtol=1e-6, atol=1e-6)


def _van_loan(A, D, C0, t):
    """C(t) = e^{At} C0 e^{Aᵀt} + ∫₀ᵗ e^{As} D e^{Aᵀs} ds (Van Loan's block exponential)."""
    n = A.shape[0]
    block = np.block([[-A, D], [np.zeros((n, n)), A.T]]) * t
    F = scipy.linalg.expm(block)
    prop = F[n:, n:].T
    return prop @ C0 @ prop.T + prop @ F[:n, n:]


def test_linear_limit_matches_closed_form():
    """g = 0: constant drift; mean and covariance follow from matrix exponentials."""
    rng = np.random.default_rng(4)
    model = _random_network(rng, 3, g=0.0, gamma=rng.uniform(0.05, 0.2, 3))
    A = np.asarray(model.drift(0.0, jnp.zeros(12)))
    D = np.asarray(model.diffusion(0.0, jnp.zeros(12)))
    b = np.asarray(model.mean_field(0.0, jnp.zeros(12)))
    state0 = qs.GaussianState(mean=jnp.asarray(rng.normal(size=12)), cov=model.initial_state().cov)
    ts = jnp.asarray([1.0, 7.5, 30.0, 400.0])
    config = qs.SolverConfig(rtol=1e-11, atol=1e-11)
    traj = qs.evolve(model, ts, state0=state0, config=config)
    for k, t in enumerate(np.asarray(ts)):
        aug = scipy.linalg.expm(np.block([[A, b[:, None]], [np.zeros((1, 13))]]) * t)
        mean = aug[:12, :12] @ np.asarray(state0.mean) + aug[:12, 12]
        assert np.allclose(traj.states.mean[k], mean, rtol=1e-8, atol=1e-8)
    for k, t in enumerate(np.asarray(ts[:3])):  # Van Loan's e^{−At} overflows at long times
        cov = _van_loan(A, D, np.asarray(state0.cov), t)
        assert np.allclose(traj.states.cov[k], cov, rtol=1e-8, atol=1e-8)
    lyap = scipy.linalg.solve_continuous_lyapunov(A, -D)
    assert np.allclose(traj.states.cov[-1], lyap, rtol=1e-7, atol=1e-7)


def _uncertainty_min_eig(cov):
    n = cov.shape[-1] // 2
    omega = np.kron(np.eye(n), np.array([[0.0, 1.0], [-1.0, 0.0]]))
    return np.linalg.eigvalsh(cov + 0.5j * omega).min(axis=-1)


def _sync_and_cov(t, state):
    return dict(
        cov=state.cov, sc=qs.complete_sync(state, 1, 3), sp=qs.phase_sync(state, 1, 3)
    )


def test_paper_pair_short_trajectory_physical_and_bounded():
    """Fig. 2(a) parameters, first 400 time units: C + iΩ/2 ⪰ 0, S_c ≤ 1."""
    model = qs.optomechanical_pair(**PAPER)
    ts = jnp.linspace(5.0, 400.0, 80)
    traj = qs.evolve(model, ts, save=_sync_and_cov)
    cov = np.asarray(traj.states["cov"])
    scale = np.abs(cov).max(axis=(1, 2))
    assert np.all(_uncertainty_min_eig(cov) > -1e-9 * scale)
    assert np.all(np.asarray(traj.states["sc"]) <= 1.0)
    assert np.all(np.asarray(traj.states["sc"]) > 0.0)


def test_random_trajectories_vmap_equals_loop_and_sync_bounded():
    rng = np.random.default_rng(5)
    models = [
        qs.optomechanical_pair(
            omega=(1.0, 1.0 + 0.01 * rng.random()), kappa=rng.uniform(0.1, 0.3),
            gamma=rng.uniform(0.005, 0.02), g=0.005, E=rng.uniform(20.0, 50.0),
            mu=rng.uniform(0.0, 0.05), n_th=rng.uniform(0.0, 3.0),
        )
        for _ in range(3)
    ]
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *models)
    ts = jnp.linspace(10.0, 150.0, 8)
    run = functools.partial(qs.evolve, ts=ts, save=_sync_and_cov, throw=False)
    result = jax.vmap(run)(batch)
    batched = result.states
    for k, model in enumerate(models):
        single = run(model)
        assert qs.status_names(single.status) == qs.status_names(result.status)[k]
        assert tree_allclose(jax.tree_util.tree_map(lambda x: np.nan_to_num(x[k]), batched),
                             jax.tree_util.tree_map(np.nan_to_num, single.states), rtol=1e-9)
    # The second draw leaves the linearized regime (fluctuation quanta 100× the mean field's by
    # t = 100): reported as such, with NaN saves, never as numbers.
    ok = np.asarray(result.status == qs.Status.success)
    assert ok.tolist() == [True, False, True]
    assert np.all(np.asarray(batched["sc"])[ok] <= 1.0)
    cov = np.asarray(batched["cov"])[ok]
    assert np.all(_uncertainty_min_eig(cov) > -1e-9 * np.abs(cov).max(axis=(-2, -1)))


def test_model_jit_equals_no_jit():
    rng = np.random.default_rng(6)
    for model in _models(rng).values():
        mean = jnp.asarray(rng.normal(size=2 * model.n_modes) * 100)
        for method in ("mean_field", "drift", "diffusion"):
            fn = lambda m, u, method=method: getattr(m, method)(0.0, u)  # noqa: E731
            assert tree_allclose(jax.jit(fn)(model, mean), fn(model, mean), rtol=1e-14)
    # Parameters are array leaves: new values (scalar or per-site) reuse the compiled function.
    traces = []

    @jax.jit
    def drift(model, mean):
        traces.append(None)
        return model.drift(0.0, mean)

    for omega, mu in ((1.0, 0.02), ((1.0, 1.1), 0.05)):
        drift(qs.optomechanical_pair(**{**PAPER, "omega": omega, "mu": mu}), jnp.ones(8))
    assert len(traces) == 1
    # Positive control: a given detuning is a new leaf (a new structure), traced again.
    drift(qs.optomechanical_pair(**{**PAPER, "detuning": 1.0}), jnp.ones(8))
    assert len(traces) == 2


def test_gradient_of_sync_wrt_coupling_matches_finite_differences():
    config = qs.SolverConfig(rtol=1e-10, atol=1e-10, adjoint=dfx.ForwardMode())

    def sc_at(mu):
        model = qs.optomechanical_pair(**{**PAPER, "mu": mu[0]})
        traj = qs.evolve(model, jnp.asarray([40.0]), config=config)
        return qs.complete_sync(traj.states, 1, 3)[0]

    mu = jnp.asarray([0.02])
    grad = jax.jacfwd(sc_at)(mu)
    fd = finite_difference_grad(sc_at, mu, h=1e-5)
    assert np.allclose(grad, fd, rtol=1e-5)


def _sync_pair(t, state):
    return jnp.stack([qs.complete_sync(state, 1, 3), qs.phase_sync(state, 1, 3)])


def test_time_average_converges_with_tolerance():
    model = qs.optomechanical_pair(**PAPER)
    values = []
    for tol in (1e-5, 1e-7, 1e-9, 1e-11):
        config = qs.SolverConfig(solver=dfx.Dopri8(), rtol=jnp.asarray(tol), atol=jnp.asarray(tol))
        avg = qs.time_average(model, _sync_pair, (200.0, 300.0), config=config)
        values.append(np.asarray(avg.value))
    errors = [np.abs(v - values[-1]).max() for v in values[:-1]]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-7 * np.abs(values[-1]).max()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kappa=-0.1), "`kappa` must be non-negative"),
        (dict(gamma=np.nan), "`gamma` must be finite"),
        (dict(n_th=-1.0), "`n_th` must be non-negative"),
        (dict(E=np.inf), "`E` must be finite"),
        (dict(omega=(1.0, 1.0, 1.0)), r"`omega` must be a scalar or have shape \(2,\)"),
        (dict(mu=np.zeros((2, 3))), r"`mu` must be a square.*\(2, 3\)"),
        (dict(mu=np.array([[0.0, 0.1], [0.2, 0.0]])), "`mu`.*symmetric"),
        (dict(mu=np.array([[0.1, 0.1], [0.1, 0.0]])), "`mu`.*zero diagonal"),
    ],
)
def test_bad_network_parameters(kwargs, match):
    params = {**PAPER, "mu": np.array([[0.0, 0.02], [0.02, 0.0]]), **kwargs}
    with pytest.raises(ValueError, match=match):
        qs.OptomechanicalNetwork(**params)


def test_bad_constructor_arguments():
    ring = {**PAPER, "omega": 1.0}
    with pytest.raises(ValueError, match="`n_sites`"):
        qs.optomechanical_ring(2, **ring)
    with pytest.raises(ValueError, match="`mu` must be a scalar coupling strength"):
        qs.optomechanical_pair(**{**PAPER, "mu": np.ones(2)})
    with pytest.raises(ValueError, match="`omega` varies"):
        qs.optomechanical_ring(3, **{**ring, "omega": (1.0, 1.1, 1.0)})
    with pytest.raises(ValueError, match="mean_field_approx"):
        qs.OptomechanicalNetwork(**{**ring, "mu": np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0.0]])},
                                 mean_field_approx=True)
    with pytest.raises(ValueError, match="ts"):
        qs.evolve(qs.optomechanical_pair(**PAPER), jnp.asarray([2.0, 1.0]))


# ------------------------------------------------------------------ the paper's claims (slow)

DOPRI8 = qs.SolverConfig(solver=dfx.Dopri8(), rtol=1e-8, atol=1e-8)


@pytest.mark.slow
def test_fig2a_bounds_negativity_and_discord():
    """After the transient: S_p ≤ S_c ≤ 1, S_p ≤ 1 (no squeezing), E_N = 0, discord > 0."""
    model = qs.optomechanical_pair(**PAPER)
    ts = jnp.linspace(1000.0, 2000.0, 1001)
    traj = qs.evolve(model, ts, save=qs.SyncMeasures((1, 3), correlations=True), config=DOPRI8)
    v = {k: np.asarray(x)[:, 0] for k, x in traj.states.items()}
    assert np.all(v["phase_sync"] <= v["complete_sync"])
    assert np.all(v["complete_sync"] <= 1.0) and np.all(v["phase_sync"] <= 1.0)
    assert np.all(v["log_negativity"] == 0.0)
    assert np.all(v["discord"] > 1e-3)
    # The time average integrated with the ODE agrees with a quadrature of the sampled series.
    avg = qs.time_average(model, qs.SyncMeasures((1, 3)), (1000.0, 2000.0), config=DOPRI8)
    for name in ("complete_sync", "phase_sync"):
        quadrature = np.trapezoid(v[name], np.asarray(ts)) / 1000.0
        assert np.isclose(avg.value[name][0], quadrature, rtol=1e-4)


@pytest.mark.slow
def test_footnote_36_radius_and_drive_unit():
    """μ = 0: limit cycles of radius ≈ 500 for E = 48 (= 320 κ); E = 320 gives no clean cycle."""
    ts = jnp.linspace(1000.0, 2000.0, 4001)

    def radii(params):  # classical trajectory alone: for E = 320 the covariance overflows
        sol = dfx.diffeqsolve(
            dfx.ODETerm(lambda t, u, m: m.mean_field(t, u)), dfx.Dopri8(), 0.0, ts[-1], None,
            jnp.zeros(8), args=qs.optomechanical_pair(**params), saveat=dfx.SaveAt(ts=ts),
            stepsize_controller=dfx.PIDController(rtol=1e-8, atol=1e-8), max_steps=10**6,
        )
        m = np.asarray(sol.ys).reshape(-1, 2, 4)
        return np.hypot(m[..., 2], m[..., 3])

    r = radii({**PAPER, "mu": 0.0})
    assert np.all((r > 470.0) & (r < 520.0))
    r = radii({**PAPER, "mu": 0.0, "E": 320.0})
    assert np.all(r.max(axis=0) - r.min(axis=0) > 1000.0)


@pytest.mark.slow
def test_uncoupled_linearized_sync_decays_as_phase_diffusion():
    """μ = 0: the linearized relative S_c decays ∝ 1/t (the relative phase diffuses freely)."""
    ts = jnp.asarray([8000.0, 16000.0, 32000.0])
    traj = qs.evolve(qs.optomechanical_pair(**{**PAPER, "mu": 0.0}), ts,
                     save=qs.SyncMeasures((1, 3)), config=DOPRI8)
    t_sc = np.asarray(ts) * np.asarray(traj.states["complete_sync"])[:, 0]
    assert np.all(np.abs(t_sc / t_sc[-1] - 1.0) < 0.15)


@pytest.mark.slow
def test_ring_sync_decreases_with_distance():
    ring = qs.optomechanical_ring(20, **{**PAPER, "omega": 1.0})
    hs = range(1, 11)
    avg = qs.time_average(ring, qs.SyncMeasures([(1, 2 * h + 1) for h in hs]), (1000.0, 2000.0),
                          config=DOPRI8)
    s_c = np.asarray(avg.value["complete_sync"])
    s_p = np.asarray(avg.value["phase_sync"])
    assert np.all(np.diff(s_c) < 0) and np.all(np.diff(s_p) < 0)
    assert np.all(s_p <= s_c) and np.all(s_c <= 1.0)
