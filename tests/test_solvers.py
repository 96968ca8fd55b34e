"""The lean Runge–Kutta loop and unrolled steps against Diffrax's loop, and the batched small
matrix product against NumPy."""

import re

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsync_jax as qs
from qsync_jax._matmul import _small_matmul

PAIR = qs.optomechanical_pair(**{**qs.MARI2013_FIG2, "n_th": 0.5})
WINDOW = (40.0, 80.0)
MEASURES = qs.SyncMeasures((1, 3))


def average(solver, model, **options):
    config = qs.SolverConfig(solver=solver, rtol=1e-9, atol=1e-9, **options)
    result = qs.time_average(model, MEASURES, WINDOW, config=config, throw=False)
    return result.value["complete_sync"][0], result.value["phase_sync"][0], result.num_steps


def with_drive(E):
    return eqx.tree_at(lambda m: m.E, PAIR, jnp.broadcast_to(E, (2,)))


# (slow: the default suite compares Unrolled with Diffrax in test_dense_output_matches_diffrax)
@pytest.mark.slow
@pytest.mark.parametrize("solver", [dfx.Dopri8(), dfx.Tsit5(), dfx.Dopri5()],
                         ids=lambda s: type(s).__name__)
def test_same_steps_and_values_as_diffrax(solver):
    s_c, s_p, steps = average(qs.Unrolled(solver), PAIR, loop="diffrax")
    ref_c, ref_p, ref_steps = average(solver, PAIR, loop="diffrax")
    assert int(steps) == int(ref_steps)
    # same steps; the values agree to the rounding accumulated over ~2·10⁴ steps
    np.testing.assert_allclose([s_c, s_p], [ref_c, ref_p], rtol=1e-10)


def test_batched_matches_single_solves():
    drives = jnp.array([44.0, 47.5, 52.0])
    batched = jax.vmap(lambda E: average(qs.Unrolled(dfx.Dopri8()), with_drive(E)))(drives)
    for k, E in enumerate(drives):
        single = average(dfx.Dopri8(), with_drive(E))
        # A batched product rounds differently from a single one; on the neutrally stable phase
        # of a limit cycle that moves results by the solver's tolerance, not more.
        np.testing.assert_allclose([batched[0][k], batched[1][k]], single[:2], rtol=1e-7)
        assert abs(int(batched[2][k]) - int(single[2])) <= 0.01 * int(single[2])


def test_dense_output_matches_diffrax():
    ts = jnp.linspace(1.0, 30.0, 17)  # interpolated between steps
    runs = [qs.evolve(PAIR, ts, config=qs.SolverConfig(solver=s, rtol=1e-10, atol=1e-10,
                                                       loop="diffrax"))
            for s in (qs.Unrolled(dfx.Dopri8()), dfx.Dopri8())]
    # Sums in another order round differently: agreement at the tolerance, not bit for bit.
    np.testing.assert_allclose(runs[0].states.cov, runs[1].states.cov, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(runs[0].states.mean, runs[1].states.mean, rtol=1e-9)
    assert int(runs[0].num_steps) == int(runs[1].num_steps)


# reverse mode through the lean loop is checked against finite differences in test_integrate
@pytest.mark.parametrize("adjoint", [pytest.param(dfx.RecursiveCheckpointAdjoint(),
                                                  marks=pytest.mark.slow), dfx.ForwardMode()],
                         ids=["reverse", "forward"])
def test_gradients_match_diffrax(adjoint):
    def objective(solver, E, loop):
        config = qs.SolverConfig(solver=solver, rtol=1e-9, atol=1e-9, adjoint=adjoint,
                                 dt0=0.01, loop=loop)
        avg = qs.time_average(with_drive(E), MEASURES, (4.0, 8.0), config=config)
        return avg.value["complete_sync"][0]

    diff = jax.jacrev if isinstance(adjoint, dfx.RecursiveCheckpointAdjoint) else jax.jacfwd
    lean = diff(lambda E: objective(dfx.Dopri8(), E, "auto"))(48.0)
    unrolled = diff(lambda E: objective(qs.Unrolled(dfx.Dopri8()), E, "diffrax"))(48.0)
    want = diff(lambda E: objective(dfx.Dopri8(), E, "diffrax"))(48.0)
    np.testing.assert_allclose(unrolled, want, rtol=1e-9)
    np.testing.assert_allclose(lean, want, rtol=1e-9)
    h = 1e-4  # central difference of the value, itself accurate to the tolerance
    fd = (objective(dfx.Dopri8(), 48.0 + h, "auto") - objective(dfx.Dopri8(), 48.0 - h, "auto"))
    np.testing.assert_allclose(lean, fd / (2 * h), rtol=1e-4)
    assert abs(float(lean)) > 0


def test_rejects_solvers_without_one_explicit_tableau():
    for solver in (dfx.Kvaerno5(), dfx.Euler(), "Dopri8"):
        with pytest.raises(ValueError, match="explicit Runge"):
            qs.Unrolled(solver)


# ------------------------------------------------------------------ the lean loop


def lean_and_diffrax(solver, **options):
    configs = [qs.SolverConfig(solver=solver, rtol=1e-9, atol=1e-9, loop=loop, **options)
               for loop in ("auto", "diffrax")]
    return [qs.time_average(PAIR, MEASURES, WINDOW, config=c, throw=False) for c in configs]


@pytest.mark.parametrize(
    "solver", [dfx.Dopri8(), pytest.param(dfx.Tsit5(), marks=pytest.mark.slow)],
    ids=lambda s: type(s).__name__,
)
def test_lean_loop_takes_diffrax_steps(solver):
    # From the same first step, the same controller takes the same steps: to rounding.
    lean, ref = lean_and_diffrax(solver, dt0=0.01)
    assert int(lean.num_steps) == int(ref.num_steps)
    for key in ("complete_sync", "phase_sync"):
        np.testing.assert_allclose(lean.value[key], ref.value[key], rtol=1e-10)
    np.testing.assert_allclose(lean.state.cov, ref.state.cov, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_lean_loop_default_first_step_agrees_within_tolerance():
    # dt0=None: the lean loop starts from Hairer's initial step, Diffrax (0.7) from 0.01, so
    # the steps differ and the answers agree to the tolerance (1e-9), not to rounding.
    lean, ref = lean_and_diffrax(dfx.Dopri8())
    assert abs(int(lean.num_steps) - int(ref.num_steps)) <= 5
    for key in ("complete_sync", "phase_sync"):
        np.testing.assert_allclose(lean.value[key], ref.value[key], rtol=1e-7)


def test_lean_evolve_saves_match_diffrax_dense_output():
    ts = jnp.concatenate([jnp.zeros(1), jnp.linspace(0.5, 30.0, 9)])  # t0 itself, then between
    runs = [qs.evolve(PAIR, ts, config=qs.SolverConfig(dt0=0.01, loop=loop, rtol=1e-10,
                                                       atol=1e-10))
            for loop in ("auto", "diffrax")]
    assert int(runs[0].num_steps) == int(runs[1].num_steps)
    # dense output from differently rounded stages: agreement well inside the tolerance (1e-10)
    np.testing.assert_allclose(runs[0].states.cov, runs[1].states.cov, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(runs[0].states.mean, runs[1].states.mean, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(runs[0].states.cov[0], PAIR.initial_state().cov)


def _eigensolver_loop_depths(fn, *args) -> list[int]:
    """For each place of ``fn``'s optimized XLA program that calls LAPACK's eigensolver, the
    number of ``while`` loops and conditionals it sits in."""
    hlo = jax.jit(fn).lower(*args).compile().as_text()
    computations = {}
    for text in hlo.split("\n\n"):
        name = re.match(r"\s*(?:ENTRY\s+)?%?([\w.\-]+)", text)
        if name:
            computations[name.group(1)] = text
    depths = []

    def walk(name, depth):
        text = computations[name]
        if re.search(r'custom_call_target="lapack_\w*ev', text):
            depths.append(depth)
        for call in re.finditer(r"(?<![\w-])(?:while|conditional|call)\((.*)", text):
            for callee in re.findall(r"%([\w.\-]+)", call.group(1)):
                if callee in computations and callee != name:
                    walk(callee, depth + 1)

    walk(next(n for n, t in computations.items() if t.lstrip().startswith("ENTRY")), 0)
    return depths


@pytest.mark.parametrize("ts", [[30.0], [15.0, 30.0]])
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="reads LAPACK calls of XLA:CPU")
def test_saves_stay_inside_the_save_loop(ts):
    # With one save time, XLA once hoisted the save (dense output, save, the health check's
    # eigenvalues) out of the save loop into the solver's step, which then paid for it at every
    # step (benchmarks/bench_fig2a_point.py times it). The eigensolver runs outside the loops
    # (at t0) or in the save loop inside the step loop, never in the step loop itself.
    depths = _eigensolver_loop_depths(
        lambda m, ts: qs.evolve(m, ts, save=MEASURES).states, PAIR, jnp.asarray(ts))
    assert 1 not in depths and max(depths) >= 2, depths
    last = qs.evolve(PAIR, jnp.asarray(ts), save=MEASURES).states
    both = qs.evolve(PAIR, jnp.asarray([15.0, 30.0]), save=MEASURES).states
    for key in last:
        np.testing.assert_allclose(last[key][-1], both[key][-1], rtol=1e-12)


def test_vmapped_reverse_mode_through_saves_of_different_times():
    # Lane 0 saves its last time while lane 1 still saves in the same step; the save loop then
    # also runs lane 0 with nothing left to save, whose derivative must stay finite (a dense
    # output evaluated at the infinite end marker gave NaN).
    from qsync_jax._lean import lean_solve

    def total(rate, ts):
        sol = lean_solve(lambda t, y, rate: -rate * y, jnp.ones(2), 0.0, ts[-1], rate,
                         solver=dfx.Dopri5(), controller=dfx.PIDController(rtol=1e-4, atol=1e-4),
                         adjoint=dfx.RecursiveCheckpointAdjoint(), max_steps=100, dt0=None,
                         save=lambda t, y, rate: y, ts=ts)
        return sol.ys.sum()

    ts = jnp.array([[0.3, 0.6, 1.0], [0.97, 0.98, 1.0]])
    batched = jax.vmap(jax.grad(total), (None, 0))(1.0, ts)
    single = [jax.grad(total)(1.0, t) for t in ts]
    np.testing.assert_allclose(batched, single, rtol=1e-12)
    exact = [-2.0 * float(jnp.sum(t * jnp.exp(-t))) for t in ts]  # d/dr Σ 2 e^{-r t} at r = 1
    np.testing.assert_allclose(batched, exact, rtol=1e-3)


@pytest.mark.slow
def test_lean_loop_batched_matches_single_solves():
    drives = jnp.array([44.0, 52.0])
    config = qs.SolverConfig(rtol=1e-9, atol=1e-9)
    batched = jax.vmap(lambda E: qs.time_average(with_drive(E), MEASURES, WINDOW,
                                                 config=config).value["phase_sync"][0])(drives)
    for k, E in enumerate(drives):
        single = qs.time_average(with_drive(E), MEASURES, WINDOW, config=config)
        np.testing.assert_allclose(batched[k], single.value["phase_sync"][0], rtol=1e-7)


@pytest.mark.parametrize("loop", ["auto", pytest.param("diffrax", marks=pytest.mark.slow)])
def test_failures_are_statuses_with_nan(loop):
    few = qs.SolverConfig(max_steps=20, loop=loop)
    out = qs.time_average(PAIR, MEASURES, WINDOW, config=few, throw=False)
    assert out.status == qs.Status.max_steps_reached
    assert np.isnan(out.value["phase_sync"]).all()
    traj = qs.evolve(PAIR, jnp.linspace(1.0, 50.0, 5), config=few, throw=False)
    assert traj.status == qs.Status.max_steps_reached
    assert np.isnan(traj.states.cov[-1]).all()


def test_lean_loop_step_size_underflow_and_nonfinite_field():
    from qsync_jax._lean import lean_solve

    def field(t, y, args):  # finite-time blow-up y' = y² from y = 1 at t = 1
        return y**2

    common = dict(solver=dfx.Dopri8(), controller=dfx.PIDController(rtol=1e-8, atol=1e-8),
                  adjoint=dfx.RecursiveCheckpointAdjoint(), max_steps=100_000, dt0=None,
                  save=lambda t, y, args: y)
    y0, t0, t1 = jnp.ones(1), jnp.asarray(0.0), jnp.asarray(2.0)
    sol = lean_solve(field, y0, t0, t1, None, **common)
    assert sol.result == dfx.RESULTS.dt_min_reached
    assert abs(float(sol.ts[-1]) - 1.0) < 1e-3 and int(sol.stats["num_steps"]) < 100_000
    stop = lambda t, y, args: ~(jnp.max(jnp.abs(y)) <= 1e6)  # noqa: E731
    sol = lean_solve(field, y0, t0, t1, None, stop=stop, **common)
    assert sol.result == dfx.RESULTS.event_occurred
    nan_field = lambda t, y, args: jnp.where(t > 0.5, jnp.nan, -y)  # noqa: E731
    sol = lean_solve(nan_field, y0, t0, t1, None, **common)
    assert sol.result == dfx.RESULTS.dt_min_reached
    assert float(sol.ts[-1]) <= 0.5


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_floats_before_equals_repeated_nextafter(dtype):
    # the lean loop's threshold for clipping a step to t1: Diffrax's 100 prevbefore steps
    import equinox.internal as eqxi

    from qsync_jax._lean import CLIP_ULPS, floats_before

    rng = np.random.default_rng(3)
    exponent = 300 if dtype == jnp.float64 else 30
    x = rng.normal(size=500) * 10.0 ** rng.integers(-exponent, exponent, 500)
    x = jnp.asarray(np.concatenate([x, [1.0, -1.0, 0.5, 2000.0, -2000.0]]), dtype)
    reference = x
    for _ in range(CLIP_ULPS):
        reference = eqxi.prevbefore(reference)
    np.testing.assert_array_equal(floats_before(x, CLIP_ULPS), reference)
    assert float(floats_before(jnp.asarray(1.0, dtype), 1)) == np.nextafter(
        np.asarray(1.0, dtype), np.asarray(-np.inf, dtype))
    assert float(floats_before(jnp.zeros((), dtype), 1)) < 0
    assert float(jax.grad(lambda t: floats_before(t, 3))(jnp.asarray(2.0, dtype))) == 0


def test_solver_config_rejects_unknown_loop():
    for bad in ("fast", None, 1):
        with pytest.raises(ValueError, match="`loop`"):
            qs.SolverConfig(loop=bad)


# ------------------------------------------------------------------ small matrix products


def test_small_matmul_alone_batched_and_mixed():
    rng = np.random.default_rng(1)
    A, C = rng.normal(size=(5, 8, 8)), rng.normal(size=(5, 8, 8))
    np.testing.assert_allclose(_small_matmul(A[0], C[0]), A[0] @ C[0], rtol=1e-13)
    np.testing.assert_allclose(jax.vmap(_small_matmul)(A, C), A @ C, rtol=1e-13)
    np.testing.assert_allclose(jax.vmap(_small_matmul, (0, None))(A, C[0]), A @ C[0], rtol=1e-13)
    np.testing.assert_allclose(jax.vmap(_small_matmul, (None, 0))(A[0], C), A[0] @ C, rtol=1e-13)


def test_small_matmul_derivatives_in_both_modes_and_under_vmap():
    rng = np.random.default_rng(2)
    A, C = jnp.asarray(rng.normal(size=(3, 4, 4))), jnp.asarray(rng.normal(size=(4, 4)))

    def loss(mm, A):
        return jnp.sum(jnp.sin(mm(A, C)))

    plain = lambda a, c: a @ c  # noqa: E731
    for transform in (jax.grad, jax.jacfwd):
        got = jax.vmap(transform(lambda a: loss(_small_matmul, a)))(A)
        want = jax.vmap(transform(lambda a: loss(plain, a)))(A)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    got = jax.grad(lambda A: jnp.sum(jax.vmap(lambda a: loss(_small_matmul, a))(A)))(A)
    want = jax.grad(lambda A: jnp.sum(jax.vmap(lambda a: loss(plain, a))(A)))(A)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ------------------------------------------------------------------ stage sums


def test_stage_sum_alone_batched_and_its_derivatives():
    from qsync_jax._solvers import _stage_sum

    rng = np.random.default_rng(3)
    weights = (0.25, -1.5, 3.0)
    y0, fs = jnp.asarray(rng.normal(size=(4, 6))), jnp.asarray(rng.normal(size=(3, 4, 6)))
    h = jnp.asarray(rng.uniform(0.1, 1.0, size=4))
    want = y0 + h[:, None] * jnp.einsum("j,jbn->bn", jnp.asarray(weights), fs)
    stage_sum = _stage_sum(weights)
    np.testing.assert_allclose(stage_sum(y0[0], h[0], *fs[:, 0]), want[0], rtol=1e-13)
    batched = jax.vmap(stage_sum)(y0, h, *fs)  # the custom batching rule
    np.testing.assert_allclose(batched, want, rtol=1e-13)
    mixed = jax.vmap(stage_sum, (0, None, None, 0, None))(y0, h[0], fs[0, 0], fs[1], fs[2, 0])
    np.testing.assert_allclose(
        mixed, y0 + h[0] * (0.25 * fs[0, 0] + -1.5 * fs[1] + 3.0 * fs[2, 0]), rtol=1e-13)

    def loss(h, y0, f):  # a scalar of the batched sum, for both differentiation modes
        return jnp.sum(jnp.sin(jax.vmap(stage_sum, (0, 0, 0, 0, 0))(y0, h, f, 2 * f, f ** 2)))

    exact = jax.grad(loss, argnums=(0, 1, 2))(h, y0, fs[0])
    forward = jax.jacfwd(loss, argnums=(0, 1, 2))(h, y0, fs[0])
    eps = 1e-6
    fd = (loss(h.at[1].add(eps), y0, fs[0]) - loss(h.at[1].add(-eps), y0, fs[0])) / (2 * eps)
    np.testing.assert_allclose(exact[0][1], fd, rtol=1e-7)
    for e, f in zip(exact, forward):
        np.testing.assert_allclose(e, f, rtol=1e-12)
