"""Truncated-Wigner ensembles (qsync_jax._wigner).

References: for linear models truncated Wigner is exact, so ensemble moments must agree with
``qs.evolve`` (closed-form Gaussian moment equations) within sampling errors; without noise every
trajectory is the deterministic Weyl-ordered mean field; the stationary variance of stochastic
Heun on an Ornstein–Uhlenbeck process is known in closed form (weak order 2 in dt).
Most calls share one chunk shape (``CHUNK``) and save pattern so that they compile once.
"""

import subprocess
import sys
import textwrap

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import qsync_jax as qs
from qsync_jax._wigner import (
    _Drift,
    _five_point,
    _QuadraticDrift,
    _standard_normals,
    _wigner_drift,
)

CHUNK = 1024
TS = jnp.array([0.0, 0.5, 1.5, 3.0])
PAIRS = qs.WignerSave((0, 1))
KEY = jax.random.key(0)
HISTOGRAM = qs.WignerSave((0, 1), phase_bins=6, trajectories=True)


class LinearModel(qs.AbstractLinearModel):
    """A linear model given by its matrices: du = (A u + b) dt + noise with diffusion D."""

    A: jax.Array
    b: jax.Array
    D: jax.Array

    @property
    def n_modes(self):
        return self.A.shape[0] // 2

    def drift_matrix(self):
        return self.A

    def drive_vector(self):
        return self.b

    def diffusion_matrix(self):
        return self.D

    def bath_occupations(self):
        return jnp.zeros(self.n_modes)


class Noiseless(qs.AbstractGaussianModel):
    """``model`` with its diffusion switched off and its mean field shifted by ``shift``."""

    model: qs.AbstractGaussianModel
    shift: jax.Array

    @property
    def n_modes(self):
        return self.model.n_modes

    def mean_field(self, t, mean):
        return self.model.mean_field(t, mean) + self.shift

    def drift(self, t, mean):
        return self.model.drift(t, mean)

    def diffusion(self, t, mean):
        return jnp.zeros_like(self.model.diffusion(t, mean))

    def bath_occupations(self):
        return self.model.bath_occupations()


def random_linear(seed=0, n=2):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((2 * n, 2 * n))
    A = M - (np.max(np.linalg.eigvals(M).real) + 0.4) * np.eye(2 * n)  # stable
    G = rng.standard_normal((2 * n, 2 * n))
    # A physical (completely positive) dynamics needs D + i(AΩ + ΩAᵀ)/2 ⪰ 0: enough noise.
    omega = np.asarray(qs.symplectic_form(n))
    quantum = np.max(np.abs(np.linalg.eigvalsh(1j * (A @ omega + omega @ A.T) / 2)))
    D = G @ G.T / (2 * n) + (0.1 + quantum) * np.eye(2 * n)
    return LinearModel(A=jnp.asarray(A), b=jnp.asarray(rng.standard_normal(2 * n)),
                       D=jnp.asarray(D))


BATH = qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.1, gamma=0.5, xi=0.5, n_th=(1.0, 0.0))
STATE0 = qs.GaussianState(mean=jnp.array([1.0, 0.0, 0.5, -0.5]),
                          cov=jnp.diag(jnp.array([0.5, 0.5, 1.5, 1.5])))


def ensemble(model, n=4096, key=KEY, **kw):
    kw = {"state0": STATE0, "dt": 0.01, "save": PAIRS, "chunk_size": CHUNK} | kw
    return qs.wigner_ensemble(model, TS, n, key, **kw)


def assert_within(estimate, stderr, exact, k=4.0):
    z = np.abs(np.asarray(estimate) - np.asarray(exact)) / np.asarray(stderr)
    assert np.all(np.isfinite(z)) and np.max(z) < k, f"max |z| = {np.max(z):.2f}"


@pytest.fixture(scope="module")
def bath_runs():
    return ensemble(BATH, 1024), ensemble(BATH, 4096)


@pytest.mark.parametrize("which", ["bath", "random", "random_five_point"])
def test_linear_models_are_exact(which, bath_runs):
    """Also with five-point increments: for linear models only their first two moments enter
    the ensemble's mean and covariance."""
    model = BATH if which == "bath" else random_linear()
    increments = "five_point" if which.endswith("five_point") else "gaussian"
    ens = bath_runs[1] if which == "bath" else ensemble(model, increments=increments)
    ref = qs.evolve(model, TS, state0=STATE0)
    assert ens.status == qs.Status.success and ens.mean.shape == (4, 4)
    assert ens.cov.shape == ens.cov_stderr.shape == (4, 4, 4)
    assert_within(ens.mean, ens.mean_stderr, ref.states.mean)
    iu = np.triu_indices(4)
    assert_within(ens.cov[:, iu[0], iu[1]], ens.cov_stderr[:, iu[0], iu[1]],
                  ref.states.cov[:, iu[0], iu[1]])
    m = ens.measures
    se = ens.measures_stderr
    assert_within(m["complete_sync"][:, 0], se["complete_sync"][:, 0],
                  qs.complete_sync(ref.states, 0, 1))
    assert_within(m["complete_sync_absolute"][:, 0], se["complete_sync_absolute"][:, 0],
                  qs.complete_sync(ref.states, 0, 1, relative=False))
    assert_within(m["phase_sync"][:, 0], se["phase_sync"][:, 0], qs.phase_sync(ref.states, 0, 1))


def test_errors_shrink_as_inverse_sqrt_n(bath_runs):
    small, large = bath_runs
    ratio = np.asarray(small.cov_stderr / large.cov_stderr)
    assert 1.6 < np.median(ratio) < 2.5  # √4 = 2
    assert 1.6 < np.median(np.asarray(small.mean_stderr / large.mean_stderr)[1:]) < 2.5
    ref = qs.evolve(BATH, TS, state0=STATE0)
    err = [np.sqrt(np.mean((np.asarray(e.cov) - np.asarray(ref.states.cov)) ** 2)) for e in
           bath_runs]
    assert err[1] < err[0]


def test_zero_noise_gives_the_deterministic_mean_field():
    """Without noise every trajectory solves the Weyl-ordered mean field F = f − ¼∇²f; for the
    optomechanical pair F = f except ṗ_b −= g/√2 (a†a = |α|² − ½), written here by hand. The
    difference from the exact solution falls as dt² (Heun is second order)."""
    pair = qs.optomechanical_pair(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005,
                                  E=48.0, mu=0.02, n_th=0.0)
    shift = jnp.zeros(8).at[jnp.array([3, 7])].set(-0.005 / np.sqrt(2.0))
    u = jnp.asarray(np.random.default_rng(1).standard_normal((3, 8)))
    f = jax.vmap(pair.mean_field, (None, 0))(0.0, u)
    drift = _wigner_drift(pair)
    assert isinstance(drift, _QuadraticDrift)  # the autonomous form, written out
    np.testing.assert_allclose(drift(0.0, u.T), (f + shift).T, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(_Drift(pair)(0.0, u.T), (f + shift).T, rtol=1e-13, atol=1e-12)

    state0 = qs.GaussianState(mean=jnp.arange(8.0), cov=jnp.zeros((8, 8)))
    ts = jnp.array([0.0, 2.0, 4.0])
    config = qs.SolverConfig(solver=dfx.Tsit5(), rtol=1e-11, atol=1e-11)
    # The mean ignores C; a broad C stays physical without noise over these times.
    broad = qs.GaussianState(mean=state0.mean, cov=100.0 * jnp.eye(8))
    ref = qs.evolve(Noiseless(pair, shift), ts, state0=broad, config=config).states.mean
    errors = []
    for dt in (0.004, 0.002):
        ens = qs.wigner_ensemble(Noiseless(pair, jnp.zeros(8)), ts, 4, KEY, state0=state0,
                                 dt=dt)
        np.testing.assert_array_equal(ens.cov, 0.0)
        errors.append(float(np.max(np.abs(ens.mean - ref))))
    assert errors[1] < 1e-5 * float(np.max(np.abs(ref)))
    assert 3.5 < errors[0] / errors[1] < 4.5


@pytest.mark.parametrize("increments", ["gaussian", "five_point"])
def test_weak_order_two_in_dt(increments):
    """Ornstein–Uhlenbeck du = −u dt + dW (exact stationary variance ½): the ensemble variance
    matches Heun's own stationary variance v(dt) = (1 − λdt/2)²dt / (1 − a²),
    a = 1 − λdt + (λdt)²/2, whose error v(dt) − ½ is O(dt²) — with either kind of
    increments."""
    ou = LinearModel(A=-jnp.eye(2), b=jnp.zeros(2), D=jnp.eye(2))
    state0 = qs.GaussianState(mean=jnp.zeros(2), cov=0.5 * jnp.eye(2))
    ts = jnp.array([16.0])

    def heun_variance(dt):
        a = 1 - dt + dt**2 / 2
        return (1 - dt / 2) ** 2 * dt / (1 - a**2)

    errors = []
    for dt in (0.8, 0.4):
        ens = qs.wigner_ensemble(ou, ts, 32768, KEY, state0=state0, dt=dt, chunk_size=CHUNK,
                                 increments=increments)
        var = np.diag(np.asarray(ens.cov[0]))
        se = np.diag(np.asarray(ens.cov_stderr[0]))
        assert_within(var, se, heun_variance(dt))
        errors.append(heun_variance(dt) - 0.5)
        assert abs(var.mean() - 0.5) > 4 * se.mean() / np.sqrt(2)  # the bias is resolved
    assert 3.5 < errors[0] / errors[1] < 5.0  # ≈ 4: second order


def test_reproducible_and_independent_of_chunking(bath_runs):
    ens = bath_runs[1]
    again = ensemble(BATH, 4096)
    np.testing.assert_array_equal(again.mean, ens.mean)
    np.testing.assert_array_equal(again.cov_stderr, ens.cov_stderr)
    rechunked = ensemble(BATH, 4096, chunk_size=2048)
    np.testing.assert_allclose(rechunked.cov, ens.cov, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rechunked.measures["phase_sync"], ens.measures["phase_sync"],
                               rtol=1e-10)
    other = ensemble(BATH, 4096, key=jax.random.key(8))
    assert np.all(np.asarray(other.mean[1:] != ens.mean[1:]))


def test_chunks_draw_distinct_noise():
    """No trajectory repeats another's noise (one key per trajectory index, across chunks)."""
    ens = qs.wigner_ensemble(BATH, TS, 8, KEY, dt=0.01, chunk_size=4, save=HISTOGRAM)
    paths = np.asarray(ens.trajectories)
    assert paths.shape == (8, 4, 4)
    increments = (paths[:, -1] - paths[:, 0]).round(12)
    assert len({tuple(row) for row in increments}) == 8
    assert len({tuple(row) for row in paths[:, 0].round(12)}) == 8
    whole = qs.wigner_ensemble(BATH, TS, 8, KEY, dt=0.01, chunk_size=8, save=HISTOGRAM)
    np.testing.assert_allclose(whole.trajectories, ens.trajectories, rtol=1e-12)



def test_noise_of_a_step_is_independent_of_the_save_times():
    """Increments are drawn in blocks of steps; save intervals (here 50, 100, 150 steps) that
    straddle block boundaries must not change which increment a step gets."""
    save = qs.WignerSave(trajectories=True)
    every = qs.wigner_ensemble(BATH, TS, 8, KEY, dt=0.01, save=save)
    last = qs.wigner_ensemble(BATH, TS[-1:], 8, KEY, dt=0.01, save=save)
    np.testing.assert_allclose(last.trajectories[:, -1], every.trajectories[:, -1], rtol=1e-12)

def test_divergence_is_a_status_with_nan():
    unstable = LinearModel(A=2.0 * jnp.eye(2), b=jnp.zeros(2), D=jnp.eye(2))
    ts = jnp.array([400.0])
    ens = qs.wigner_ensemble(unstable, ts, 8, KEY, dt=0.5, throw=False)
    assert ens.status == qs.Status.diverged
    assert np.all(np.isnan(ens.mean)) and np.all(np.isnan(ens.cov_stderr))
    with pytest.raises(RuntimeError, match="non-finite"):
        qs.wigner_ensemble(unstable, ts, 8, KEY, dt=0.5)


def test_phase_histogram_is_a_density():
    ens = qs.wigner_ensemble(BATH, TS, 8, KEY, dt=0.01, chunk_size=4, save=HISTOGRAM)
    h = np.asarray(ens.measures["phase_histogram"])
    assert h.shape == (4, 1, 6)
    np.testing.assert_allclose(h.sum(-1) * 2 * np.pi / 6, 1.0)
    u = np.asarray(ens.trajectories)
    dphi = np.angle((u[..., 0] + 1j * u[..., 1]) * np.conj(u[..., 2] + 1j * u[..., 3]))
    expected = np.stack([np.histogram(d, bins=6, range=(-np.pi, np.pi))[0] for d in dphi.T])
    np.testing.assert_allclose(h[:, 0] * 2 * np.pi / 6 * 8, expected)
    np.testing.assert_allclose(ens.measures["phase_cos"][:, 0], np.cos(dphi).mean(0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_trajectories": 3}, "n_trajectories"),
        ({"n_trajectories": 10.0}, "n_trajectories"),
        ({"dt": 0.0}, "dt"),
        ({"dt": -0.01}, "dt"),
        ({"dt": float("nan")}, "dt"),
        ({"dt": 0.03}, "grid"),
        ({"ts": jnp.array([1.0, 0.5])}, "increasing"),
        ({"ts": jnp.array([0.0, jnp.inf])}, "finite"),
        ({"ts": jnp.zeros((2, 2))}, "1-D"),
        ({"key": 3}, "key"),
        ({"key": jnp.zeros(3, jnp.uint32)}, "key"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"n_groups": 1}, "n_groups"),
        ({"increments": "normal"}, "increments"),
        ({"increments": None}, "increments"),
        ({"save": {"pairs": (0, 1)}}, "save"),
        ({"save": qs.WignerSave((0, 5))}, "pairs"),
        ({"devices": []}, "devices"),
        ({"state0": qs.vacuum(3)}, "state0"),
        ({"state0": qs.GaussianState(mean=jnp.zeros(4), cov=-jnp.eye(4))}, "semidefinite"),
        ({"state0": qs.GaussianState(mean=jnp.full(4, jnp.nan), cov=jnp.eye(4))}, "finite"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"model": BATH, "ts": jnp.array([0.0, 0.5, 1.0]), "n_trajectories": 8, "key": KEY}
    args |= {k: kwargs.pop(k) for k in list(kwargs) if k in args}
    with pytest.raises(ValueError, match=match):
        qs.wigner_ensemble(args.pop("model"), args.pop("ts"), args.pop("n_trajectories"),
                           args.pop("key"), **kwargs)


def test_bad_models_and_save():
    ring = qs.optomechanical_ring(3, omega=1.0, kappa=0.15, gamma=0.005, g=0.005, E=48.0,
                                  mu=0.02)
    with pytest.raises(ValueError, match="to_network"):
        qs.wigner_ensemble(ring, TS, 8, KEY)
    with pytest.raises(ValueError, match="model"):
        qs.wigner_ensemble("pair", TS, 8, KEY)

    class StateDependentNoise(LinearModel):
        def diffusion(self, t, mean):
            return self.D * (1.0 + jnp.sum(mean**2))

    noisy = StateDependentNoise(A=-jnp.eye(2), b=jnp.zeros(2), D=jnp.eye(2))
    with pytest.raises(ValueError, match="additive"):
        qs.wigner_ensemble(noisy, TS, 8, KEY)
    for bad in ({"pairs": ((0, 0),)}, {"pairs": ((0, 1),), "phase_bins": -1},
                {"phase_bins": 4}, {"pairs": "ab"}):
        with pytest.raises(ValueError):
            qs.WignerSave(**bad)


@pytest.mark.slow
def test_result_independent_of_device_count():
    code = textwrap.dedent("""
        import jax, numpy as np, jax.numpy as jnp
        import qsync_jax as qs
        qs.use_cpu_devices(2)
        jax.config.update("jax_enable_x64", True)
        bath = qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.1, gamma=0.5, xi=0.5)
        ts = jnp.array([0.0, 1.0])
        runs = [qs.wigner_ensemble(bath, ts, 512, jax.random.key(1), dt=0.01, chunk_size=256,
                                   devices=jax.devices()[:k]) for k in (1, 2)]
        assert len(jax.devices()) == 2
        np.testing.assert_allclose(runs[0].cov, runs[1].cov, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(runs[0].mean_stderr, runs[1].mean_stderr, rtol=1e-10)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


@pytest.mark.slow
def test_fig2a_covariance_after_locking_matches_linearization():
    """Mari et al. Fig. 2(a) parameters: from the linearized state at t = 1000 (locked), the
    truncated-Wigner covariance of the mechanical quadratures over a short window agrees with the
    linearized one within a few standard errors (corrections O(1/R²), R ≈ 500)."""
    pair = qs.optomechanical_pair(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005,
                                  E=48.0, mu=0.02, n_th=0.0)
    locked = qs.evolve(pair, jnp.array([1000.0]))
    state0 = jax.tree_util.tree_map(lambda x: x[0], locked.states)
    ts = jnp.array([1000.0, 1005.0, 1010.0, 1020.0])
    ens = qs.wigner_ensemble(pair, ts, 8192, KEY, state0=state0, t0=1000.0, dt=0.005)
    ref = qs.evolve(pair, ts, state0=state0, t0=1000.0)
    mech = np.array([2, 3, 6, 7])
    iu = np.triu_indices(4)
    pick = lambda c: np.asarray(c)[:, mech[:, None], mech[None, :]][:, iu[0], iu[1]]  # noqa
    assert_within(pick(ens.cov), pick(ens.cov_stderr), pick(ref.states.cov), k=5.0)
    # The means differ at first order in the fluctuations (the back-action √2 g ⟨δa†δa⟩ on ṗ_b,
    # which linearization drops): ≈ 0.1 over the window, against R ≈ 500.
    radius = float(np.hypot(*np.asarray(state0.mean[2:4])))
    assert np.max(np.abs(ens.mean[:, mech] - ref.states.mean[:, mech])) < 1e-3 * radius


def test_result_protocol(bath_runs):
    ens = bath_runs[0]
    assert isinstance(ens, qs.AbstractResult)
    assert np.array_equal(ens.save_times(), TS)
    out = ens.outputs()
    assert {"mean", "cov", "mean_stderr", "cov_stderr", "complete_sync",
            "complete_sync_stderr"} <= set(out)
    assert "WignerEnsemble(status='success'" in repr(ens)
    assert int(ens.num_steps) == 300 and ens.n_trajectories == 1024
    assert eqx.tree_equal(qs.WignerSave((0, 1)), PAIRS)


def test_increment_normals_are_sound():
    """The float32 normal numbers of the increments, enumerated over all 2²³ values: symmetric,
    unit variance and fourth moment 3 far below any resolvable sampling error."""
    z = np.asarray(_standard_normals(jnp.arange(2**23, dtype=jnp.uint32) << 9))
    assert z.dtype == np.float64
    np.testing.assert_array_equal(np.sort(z), np.sort(-z))  # symmetric: odd moments vanish
    assert abs(np.mean(z**2) - 1.0) < 1e-6 and abs(np.mean(z**4) - 3.0) < 1e-4
    assert 5.0 < np.max(np.abs(z)) < 5.5
    assert len(np.unique(z)) == 2**23  # 23 bits of each word used
    top = _standard_normals(jnp.full(3, 2**32 - 1, jnp.uint32))  # the low 9 bits are ignored
    np.testing.assert_array_equal(top, np.max(z))


class TimeDependent(LinearModel):
    """A linear model with a drive modulated in time, b cos t."""

    def mean_field(self, t, mean):
        return self.A @ mean + self.b * jnp.cos(t)


def test_written_out_drift_equals_the_mean_field():
    """The autonomous drift is written term by term (c + Au + ½H[u, u]); it equals f − ∇²f/4
    column by column; a mean field that reads t keeps the general form."""
    rng = np.random.default_rng(3)
    pair = qs.optomechanical_pair(omega=(1.0, 1.2), kappa=0.3, gamma=0.01, g=0.02, E=5.0,
                                  mu=0.1, n_th=0.5)
    for model in (pair, random_linear(5, n=3), BATH):
        drift = _wigner_drift(model)
        assert isinstance(drift, _QuadraticDrift)
        u = jnp.asarray(rng.standard_normal((2 * model.n_modes, 5)) * 10)
        np.testing.assert_allclose(drift(0.0, u), _Drift(model)(0.0, u), rtol=1e-12,
                                   atol=1e-12)
    model = random_linear(5, n=1)
    moving = TimeDependent(A=model.A, b=model.b, D=model.D)
    assert isinstance(_wigner_drift(moving), _Drift)
    u = jnp.asarray(rng.standard_normal((2, 5)))
    np.testing.assert_allclose(_wigner_drift(moving)(1.0, u),
                               model.A @ u + model.b[:, None] * np.cos(1.0), rtol=1e-12)


def test_five_point_numbers():
    """Every 3-bit code once: the moments of N(0, 1) up to the fifth; ten codes per word."""
    xi = np.asarray(_five_point(jnp.arange(8, dtype=jnp.uint32)[:, None]))[:8, 0]
    for k, moment in enumerate([1.0, 0.0, 1.0, 0.0, 3.0, 0.0]):
        np.testing.assert_allclose(np.mean(xi**k), moment, atol=1e-14)
    word = jnp.asarray([sum(c << (3 * v) for v, c in enumerate([1, 2, 3, 4, 5, 6, 7, 0, 6, 4]))],
                       jnp.uint32)
    a, b = np.sqrt(2 - np.sqrt(2)), np.sqrt(2 + np.sqrt(2))
    np.testing.assert_allclose(_five_point(word), [0, 0, 0, a, -a, b, -b, 0, b, a], atol=1e-15)


def test_five_point_ensembles_reproducible_and_distinct():
    """Five-point increments keep the random stream's guarantees: a function of the key only,
    and different from the Gaussian one."""
    runs = [qs.wigner_ensemble(BATH, TS, 8, KEY, dt=0.01, chunk_size=c, save=HISTOGRAM,
                               increments="five_point") for c in (4, 8)]
    np.testing.assert_allclose(runs[0].trajectories, runs[1].trajectories, rtol=1e-12)
    paths = np.asarray(runs[0].trajectories)
    assert len({tuple(row) for row in (paths[:, -1] - paths[:, 0]).round(12)}) == 8
    gaussian = qs.wigner_ensemble(BATH, TS, 8, KEY, dt=0.01, chunk_size=8, save=HISTOGRAM)
    assert not np.allclose(gaussian.trajectories[:, -1], paths[:, -1])


def test_time_dependent_mean_field_without_noise():
    """A mean field that reads t keeps the general drift; without noise every trajectory is the
    deterministic solution (Heun: error O(dt²))."""
    model = random_linear(5, n=1)
    moving = TimeDependent(A=model.A, b=model.b, D=jnp.zeros((2, 2)))
    state0 = qs.GaussianState(mean=jnp.array([1.0, -1.0]), cov=jnp.zeros((2, 2)))
    ens = qs.wigner_ensemble(moving, TS, 4, KEY, state0=state0, dt=0.01)
    A, b = np.asarray(model.A), np.asarray(model.b)
    ref = solve_ivp(lambda t, u: A @ u + b * np.cos(t), (0.0, float(TS[-1])), [1.0, -1.0],
                    t_eval=np.asarray(TS), rtol=1e-11, atol=1e-12).y.T
    np.testing.assert_allclose(ens.mean, ref, atol=1e-4)
    np.testing.assert_array_equal(ens.cov, 0.0)
