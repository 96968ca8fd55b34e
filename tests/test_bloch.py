"""Bloch-decomposed rings against the dense covariance path and brute-force block algebra."""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import finite_difference_grad, tree_allclose

import qsync_jax as qs

SITE = dict(omega=1.0, kappa=0.15, gamma=0.005, g=0.05, E=2.0, n_th=0.5)
# Tsit5 at 1e-12: its error estimate is reliable this tight (Dopri8's leaves ~1e-10 between two
# solves of the same dynamics that take different steps).
TIGHT = qs.SolverConfig(solver=dfx.Tsit5(), rtol=1e-12, atol=1e-12)
TS = jnp.array([1.0, 3.0, 10.0])


def circulant(profile, n):
    """Symmetric circulant μ with μ_{j,j±h} = profile[h − 1]."""
    row = np.zeros(n)
    for h, c in enumerate(profile, start=1):
        row[h] = row[-h] = c
    return np.stack([np.roll(row, j) for j in range(n)])


def block_circulant(blocks):
    """Dense matrix with blocks M_jk = blocks[(k − j) mod N]."""
    n, d = len(blocks), blocks[0].shape[0]
    return np.block([[blocks[(k - j) % n] for k in range(n)] for j in range(n)]).reshape(n * d, -1)


def random_ring_state(n, seed):
    """A physical translation-invariant state without mirror symmetry: C = ½·1 + B Bᵀ/10 with
    B block circulant and random (C_{0,h} ≠ C_{0,−h}), and a random uniform mean, large enough
    (amplitudes ~10) that the fluctuations stay in the linearized regime (qsync_jax._checks)."""
    rng = np.random.default_rng(seed)
    b = block_circulant(list(rng.normal(size=(n, 4, 4))))
    cov = 0.5 * np.eye(4 * n) + b @ b.T / 10
    mean = np.tile(10.0 * rng.normal(size=4), n)
    return qs.GaussianState(mean=jnp.asarray(mean), cov=jnp.asarray(cov))


def relative_error(x, y):
    x, y = np.asarray(x), np.asarray(y)
    return np.max(np.abs(x - y)) / np.max(np.abs(y))


RINGS = {
    "N3-nearest": (3, dict(mu=0.02, mean_field_approx=True), None),
    "N4-nearest-no-mf-approx": (4, dict(mu=0.02, mean_field_approx=False), None),
    "N5-range2-asymmetric-state": (5, dict(mu=circulant([0.02, 0.01], 5)), 1),
    "N8-range4-asymmetric-state": (8, dict(mu=circulant([0.02, -0.01, 0.004, 0.003], 8)), 2),
}


def make_ring(n, kwargs):
    """The dense network of a ring case (the reference of the Bloch model)."""
    mu = np.asarray(kwargs["mu"])
    if mu.ndim == 0:
        return qs.optomechanical_ring(n, **SITE, mu=float(mu), mean_field_approx=False)
    return qs.OptomechanicalNetwork(**SITE, mu=mu)


def ring_model(n, kwargs):
    """The ring model of a case: what optomechanical_ring returns, or from_network."""
    mu = np.asarray(kwargs["mu"])
    if mu.ndim == 0 and kwargs.get("mean_field_approx", True):
        return qs.optomechanical_ring(n, **SITE, mu=float(mu))
    return qs.OptomechanicalRing.from_network(make_ring(n, kwargs))


# --- Transforms and vector field: exact algebra, no solve -------------------------------------


@pytest.mark.parametrize("n", [5, 8])
def test_ring_state_transforms_match_dense_blocks(n):
    state = random_ring_state(n, seed=n)
    cov = np.asarray(state.cov)
    ring = qs.RingState.from_dense(state, n)
    assert ring.bloch_real.shape == (10, n // 2 + 1) and ring.bloch_imag.shape == (6, n // 2 + 1)
    blocks = np.stack([cov[:4, 4 * h : 4 * h + 4] for h in range(n)])
    fourier = np.moveaxis(np.fft.fft(blocks, axis=0)[: n // 2 + 1], 0, -1)
    assert relative_error(ring.bloch_blocks(), fourier) < 1e-14
    assert relative_error(ring.cov, cov) < 1e-14
    assert relative_error(ring.mean, state.mean) < 1e-14
    block = lambda j, k: cov[4 * j : 4 * j + 4, 4 * k : 4 * k + 4]  # noqa: E731
    hs = np.arange(-3, 2 * n)
    expected = np.stack([block(0, h % n) for h in hs])
    assert relative_error(ring.correlation(hs), expected) < 1e-14
    traced = jax.jit(lambda r, h: r.correlation(h))(ring, jnp.asarray(hs))  # phases at run time
    assert relative_error(traced, expected) < 1e-14
    assert relative_error(ring.correlation(2), block(0, 2)) < 1e-14
    assert relative_error(ring.correlations(), expected[3 : 3 + n // 2 + 1]) < 1e-14
    # Sites 0 and h, all modes and mechanics only.
    for h in (1, n - 1):
        idx = np.r_[0:4, 4 * h : 4 * h + 4]
        pair = ring.pair(h)
        assert relative_error(pair.cov, cov[np.ix_(idx, idx)]) < 1e-14
        mech = ring.pair(h, modes=(1,))
        assert relative_error(mech.cov, cov[np.ix_(idx[[2, 3, 6, 7]], idx[[2, 3, 6, 7]])]) < 1e-14
    batch = ring.pair(jnp.array([1, 2]), modes=(1,))
    assert batch.cov.shape == (2, 4, 4) and batch.mean.shape == (2, 4)
    assert relative_error(batch.cov[1], ring.pair(2, modes=(1,)).cov) < 1e-14
    # A RingState reads like the dense state in the measures.
    assert np.isclose(qs.complete_sync(ring, 1, 3), qs.complete_sync(state, 1, 3), rtol=1e-13)
    assert np.isclose(
        qs.phase_sync(ring.pair(2), 1, 3), qs.phase_sync(state, 1, 5), rtol=1e-13
    )


@pytest.mark.parametrize("name", ["N5-range2-asymmetric-state", "N8-range4-asymmetric-state"])
def test_bloch_vector_field_is_the_dense_one(name):
    """Blockwise dĜ(q) = Â(q)Ĝ(q) + Ĝ(q)Â(q)ᵀ + D equals A C + C Aᵀ + D of the full network."""
    n, kwargs, seed = RINGS[name]
    network = make_ring(n, kwargs)
    state = random_ring_state(n, seed)
    t = jnp.asarray(0.7)
    A = network.drift(t, state.mean)
    dense_cov = A @ state.cov + state.cov @ A.T + network.diffusion(t, state.mean)
    dense_mean = network.mean_field(t, state.mean)
    bloch = qs.OptomechanicalRing.from_network(network)
    rate = bloch.vector_field(t, qs.RingState.from_dense(state, n))
    assert relative_error(rate.cov, dense_cov) < 1e-13
    assert relative_error(rate.mean, dense_mean) < 1e-13
    # Dropping Im Ĝ gives the mirror-symmetrized state, C_{0,h} → (C_{0,h} + C_{0,−h})/2; its
    # rate is computed without the imaginary parts.
    mirror = qs.RingState.from_dense(state, n)
    mirror = qs.RingState(site_mean=mirror.site_mean, bloch_real=mirror.bloch_real,
                          bloch_imag=None, n_sites=n)
    A = network.drift(t, mirror.mean)
    C = mirror.cov
    blocks = np.stack([np.asarray(C)[:4, 4 * h : 4 * h + 4] for h in range(n)])
    assert np.allclose(blocks, np.swapaxes(blocks[(-np.arange(n)) % n], 1, 2), atol=1e-14)
    rate = bloch.vector_field(t, mirror)
    assert rate.bloch_imag is None
    assert relative_error(rate.cov, A @ C + C @ A.T + network.diffusion(t, mirror.mean)) < 1e-13


def test_direct_construction_matches_network():
    profile = [0.02, -0.01, 0.004, 0.003]
    direct = qs.OptomechanicalRing(8, **SITE, mu=jnp.asarray(profile))
    network = qs.OptomechanicalNetwork(**SITE, mu=circulant(profile, 8))
    converted = qs.OptomechanicalRing.from_network(network)
    assert tree_allclose(converted.to_network(), network, rtol=0.0, atol=1e-15)
    assert np.allclose(direct.bloch_couplings, converted.bloch_couplings, rtol=0, atol=1e-15)
    # λ_q are the eigenvalues of μ (each q ≠ 0, N/2 twice).
    eig = np.sort(np.linalg.eigvalsh(circulant(profile, 8)))
    lam = np.asarray(direct.bloch_couplings)
    assert np.allclose(np.sort(np.r_[lam, lam[1:-1]]), eig, atol=1e-15)
    nearest = qs.OptomechanicalRing(5, **SITE, mu=0.02)
    assert np.allclose(nearest.bloch_couplings, 0.04 * np.cos(2 * np.pi * np.arange(3) / 5))


# --- Integration: Bloch path against the dense path --------------------------------------------


@pytest.mark.parametrize("name", list(RINGS))
def test_evolve_bloch_matches_dense(name):
    n, kwargs, seed = RINGS[name]
    network = make_ring(n, kwargs)
    ring = ring_model(n, kwargs)
    state0 = None if seed is None else random_ring_state(n, seed)
    ring_state0 = None if seed is None else qs.RingState.from_dense(state0, n)
    # The random states start far from the weakly driven mean field: by t ≈ 10 their
    # fluctuations rival it (Status.linearization_broken), so they are compared earlier.
    ts = TS if seed is None else TS / 4
    bloch = qs.evolve(ring, ts, config=TIGHT, state0=ring_state0)
    dense = qs.evolve(network, ts, config=TIGHT, state0=state0)
    assert isinstance(bloch.states, qs.RingState) and isinstance(dense.states, qs.GaussianState)
    assert bloch.states.bloch_real.shape == (len(ts), 10, n // 2 + 1)
    # The default state is mirror symmetric: Im Ĝ = 0 is not even integrated.
    assert (bloch.states.bloch_imag is None) == (state0 is None)
    for k in range(len(ts)):
        assert relative_error(bloch.states.cov[k], dense.states.cov[k]) < 1e-10
        assert relative_error(bloch.states.mean[k], dense.states.mean[k]) < 1e-10
    pair = bloch.states.pair(n - 1)
    idx = np.r_[0:4, 4 * (n - 1) : 4 * n]
    assert relative_error(pair.cov, dense.states.cov[:, idx][:, :, idx]) < 1e-10


def _sync_bloch(t, s):
    mech = s.pair(1, modes=(1,))
    return qs.complete_sync(mech, 0, 1), qs.phase_sync(s.pair(2), 1, 3)


def _sync_dense(t, s):
    return qs.complete_sync(s, 1, 3), qs.phase_sync(s, 1, 5)


@pytest.mark.slow  # ~50–70 s on 2 cores
def test_time_average_bloch_matches_dense():
    network = make_ring(*RINGS["N4-nearest-no-mf-approx"][:2])
    ring = qs.OptomechanicalRing.from_network(network)
    window = (2.0, 6.0)
    bloch = qs.time_average(ring, _sync_bloch, window, config=TIGHT)
    dense = qs.time_average(network, _sync_dense, window, config=TIGHT)
    assert isinstance(bloch.state, qs.RingState)
    for b, d in zip(bloch.value, dense.value):
        assert relative_error(b, d) < 1e-10
    assert relative_error(bloch.state.cov, dense.state.cov) < 1e-10
    # The plain measures read a RingState through its O(N) `reduce`: same numbers.
    measures = qs.SyncMeasures([(1, 3), (1, 5), (0, 7)], correlations=True)
    on_ring = qs.time_average(ring, measures, window, config=TIGHT)
    on_network = qs.time_average(network, measures, window, config=TIGHT)
    for name in on_network.value:
        np.testing.assert_allclose(on_ring.value[name], on_network.value[name], rtol=1e-9,
                                   atol=1e-12, err_msg=name)


def test_jit_and_vmap_match_eager():
    rings = [qs.optomechanical_ring(3, **SITE, mu=mu) for mu in (0.02, 0.03)]
    run = lambda m: qs.evolve(m, TS, config=TIGHT).states  # noqa: E731
    eager = [run(r) for r in rings]
    jitted = jax.jit(run)(rings[0])
    assert isinstance(eager[0], qs.RingState) and isinstance(jitted, qs.RingState)
    assert tree_allclose(jitted, eager[0], rtol=1e-13, atol=0.0)
    batched = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *rings)
    vmapped = jax.vmap(run)(batched)
    for k in range(2):
        one = jax.tree_util.tree_map(lambda x: x[k], vmapped)
        assert tree_allclose(one, eager[k], rtol=1e-12, atol=0.0)


@pytest.mark.parametrize(
    "adjoint, derivative",
    [(dfx.ForwardMode(), jax.jacfwd), pytest.param(dfx.RecursiveCheckpointAdjoint(), jax.grad,
                                                   marks=pytest.mark.slow)],
)
def test_derivative_through_bloch_path_matches_finite_differences(adjoint, derivative):
    ts = jnp.array([3.0])
    config = qs.SolverConfig(solver=dfx.Tsit5(), rtol=1e-12, atol=1e-12, adjoint=adjoint)

    def sync(mu):
        ring = qs.OptomechanicalRing(5, **SITE, mu=mu)
        state = qs.evolve(ring, ts, config=config).states
        return qs.complete_sync(state.pair(1, modes=(1,)), 0, 1)[0]

    mu = jnp.asarray([0.02, 0.01])
    expected = finite_difference_grad(sync, mu, h=1e-5)
    assert np.allclose(derivative(sync)(mu), expected, rtol=1e-6)


# --- Bad input ----------------------------------------------------------------------------------


def test_non_uniform_rings_are_networks_and_refuse_the_ring_model():
    omega = jnp.array([1.0, 1.0, 1.005, 1.0])
    uneven = qs.optomechanical_ring(4, **{**SITE, "omega": omega}, mu=0.02, mean_field_approx=False)
    with pytest.raises(ValueError, match="omega"):
        qs.OptomechanicalRing.from_network(uneven)
    with pytest.raises(ValueError, match="`omega` varies"):
        qs.optomechanical_ring(4, **{**SITE, "omega": omega}, mu=0.02)
    assert isinstance(qs.evolve(uneven, TS, config=TIGHT).states, qs.GaussianState)
    chain = qs.OptomechanicalNetwork(**SITE, mu=0.02 * (np.eye(5, k=1) + np.eye(5, k=-1)))
    with pytest.raises(ValueError, match="circulant"):
        qs.OptomechanicalRing.from_network(chain)
    with pytest.raises(ValueError, match="OptomechanicalNetwork"):
        qs.OptomechanicalRing.from_network(object())


def test_small_rings_and_bad_arguments_are_rejected():
    pair = qs.optomechanical_pair(**SITE, mu=0.02)
    with pytest.raises(ValueError, match="n_sites ≥ 3"):
        qs.OptomechanicalRing.from_network(pair)
    with pytest.raises(ValueError, match="n_sites"):
        qs.OptomechanicalRing(2, **SITE, mu=0.02)
    with pytest.raises(ValueError, match="n_sites"):
        qs.RingState(site_mean=jnp.zeros(4), bloch_real=jnp.zeros((10, 2)), bloch_imag=None,
                     n_sites=2)
    with pytest.raises(ValueError, match="`mu`"):
        qs.OptomechanicalRing(6, **SITE, mu=jnp.zeros(4))
    with pytest.raises(ValueError, match="`omega`"):
        qs.OptomechanicalRing(3, **{**SITE, "omega": jnp.ones(3)}, mu=0.02)
    for name, value in (("gamma", -0.1), ("n_th", np.nan), ("kappa", np.inf), ("omega", -1.0)):
        with pytest.raises(ValueError, match=f"`{name}`"):
            qs.OptomechanicalRing(3, **{**SITE, name: value}, mu=0.02)
    ring = qs.optomechanical_ring(4, **SITE, mu=0.02)
    with pytest.warns(DeprecationWarning, match="path"):
        qs.evolve(ring, TS, path="bloch")
    state = ring.initial_state()
    for h in (0, 4, jnp.array([1, 5])):
        with pytest.raises(ValueError, match="`h`"):
            state.pair(h)
    with pytest.raises(ValueError, match="`h`"):
        state.correlation(1.5)
    with pytest.raises(ValueError, match="`modes`"):
        state.pair(1, modes=(2,))
    for modes in ((1, 1), (16,), (), (0.5,)):
        with pytest.raises(ValueError, match="`modes`"):
            state.reduce(modes)
    displaced = qs.GaussianState(mean=jnp.zeros(16).at[0].set(1.0), cov=0.5 * jnp.eye(16))
    with pytest.raises(ValueError, match="translation invariant"):
        qs.RingState.from_dense(displaced, 4)
    with pytest.raises(ValueError, match="state0.*RingState"):
        qs.evolve(ring, TS, state0=qs.vacuum(8))  # a dense state: convert it explicitly
    other = qs.RingState(site_mean=jnp.zeros(4), bloch_real=jnp.zeros((10, 4)), bloch_imag=None,
                         n_sites=6)
    with pytest.raises(ValueError, match="RingState"):
        qs.evolve(ring, TS, state0=other)
    nan = qs.RingState(site_mean=jnp.full(4, jnp.nan), bloch_real=state.bloch_real,
                       bloch_imag=None, n_sites=4)
    with pytest.raises(ValueError, match="state0 has non-finite"):
        qs.evolve(ring, TS, state0=nan)


@pytest.mark.slow  # builds a ring near the memory limit
def test_dense_path_beyond_memory_raises_before_work():
    n = 1000
    chain = np.eye(n, k=1) + np.eye(n, k=-1)
    network = qs.OptomechanicalNetwork(**SITE, mu=0.02 * chain)
    ts = jnp.linspace(1.0, 2.0, 10_000)  # 10⁴ saves of a 4000 × 4000 covariance: ~1.3 TB
    with pytest.raises(MemoryError, match="GiB"):
        qs.evolve(network, ts)


# --- Measures and sweeps on rings: O(N), never the dense covariance -----------------------------


def _jaxpr_sizes(jaxpr):
    """Sizes of every array in a jaxpr, its sub-jaxprs (loops, conditionals) included."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    for v in jaxpr.invars:
        yield int(np.prod(getattr(v.aval, "shape", ())))
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            yield int(np.prod(getattr(v.aval, "shape", ())))
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    yield from _jaxpr_sizes(sub)


def _largest_intermediate(fn, *args) -> int:
    """Size of the largest array in the traced program of ``fn`` (inputs included)."""
    return max(_jaxpr_sizes(jax.make_jaxpr(fn)(*args)))


def test_measures_read_a_ring_state_in_linear_memory():
    n = 12
    state = random_ring_state(n, seed=7)
    ring = qs.RingState.from_dense(state, n)
    for i, j in ((1, 3), (1, 2 * n - 1), (0, 9), (5, 2)):
        assert np.isclose(qs.complete_sync(ring, i, j), qs.complete_sync(state, i, j), rtol=1e-12)
        assert np.isclose(qs.phase_sync(ring, i, j), qs.phase_sync(state, i, j), rtol=1e-12)
    reduced = ring.reduce((7, 0, 3))
    idx = np.r_[14:16, 0:2, 6:8]
    assert relative_error(reduced.cov, np.asarray(state.cov)[np.ix_(idx, idx)]) < 1e-13
    assert relative_error(reduced.mean, np.asarray(state.mean)[idx]) < 1e-13
    big = qs.optomechanical_ring(2000, **SITE, mu=0.02).initial_state()
    measures = qs.SyncMeasures([(1, 3), (1, 2001)], correlations=True)
    assert _largest_intermediate(lambda s: measures(0.0, s), big) < 100 * 2000


SEEN_STATES = []
SWEEP_CONFIG = qs.SolverConfig(solver=dfx.Tsit5(), rtol=1e-10, atol=1e-10)


def _ring_sync(t, state):
    SEEN_STATES.append(type(state))
    return qs.SyncMeasures([(1, 3), (1, 5)])(t, state)


def _ring_average(model):
    return qs.time_average(model, _ring_sync, (2.0, 6.0), config=SWEEP_CONFIG, throw=False)


@pytest.mark.slow  # ~50–70 s on 2 cores
def test_sweep_over_rings_runs_the_bloch_path():
    mus = [0.01, 0.03]
    SEEN_STATES.clear()
    ds = qs.sweep(_ring_average, qs.optomechanical_ring(12, **SITE, mu=0.02), {"mu": mus},
                  progress=False)
    assert set(SEEN_STATES) == {qs.RingState}
    for k, mu in enumerate(mus):  # every point equals the dense network built directly
        dense = _ring_average(qs.optomechanical_ring(12, **SITE, mu=mu, mean_field_approx=False))
        assert relative_error(ds["complete_sync"].values[k], dense.value["complete_sync"]) < 1e-8
        assert relative_error(ds["phase_sync"].values[k], dense.value["phase_sync"]) < 1e-8
    big = qs.optomechanical_ring(200, **SITE, mu=0.02)
    ds = qs.sweep(_ring_average, big, {"mu": mus}, progress=False)
    assert (ds["status"].values == "success").all()
    assert np.all((ds["complete_sync"].values > 0) & (ds["complete_sync"].values <= 1))
    # O(N) memory: no array of the batched program (solver loops included) comes near one dense
    # (4N)² covariance; the largest are the batch's Runge–Kutta stages of Bloch blocks.
    batch = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *[
        qs.optomechanical_ring(200, **SITE, mu=mu) for mu in mus])
    dynamic, static = eqx.partition(batch, eqx.is_array)
    program = lambda d: eqx.filter_vmap(_ring_average)(eqx.combine(d, static))  # noqa: E731
    assert _largest_intermediate(program, dynamic) < (4 * 200) ** 2 / 10
    # Positive control: the dense network's program holds covariances, (4N)² and more.
    dense = qs.optomechanical_ring(20, **SITE, mu=0.02, mean_field_approx=False)
    assert _largest_intermediate(_ring_average, dense) >= (4 * 20) ** 2
