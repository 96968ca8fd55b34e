"""Unrolled Runge–Kutta steps and the batched small matrix product against Diffrax and NumPy."""

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


def average(solver, model):
    config = qs.SolverConfig(solver=solver, rtol=1e-9, atol=1e-9)
    result = qs.time_average(model, MEASURES, WINDOW, config=config, throw=False)
    return result.value["complete_sync"][0], result.value["phase_sync"][0], result.num_steps


def with_drive(E):
    return eqx.tree_at(lambda m: m.E, PAIR, jnp.broadcast_to(E, (2,)))


@pytest.mark.parametrize("solver", [dfx.Dopri8(), dfx.Tsit5(), dfx.Dopri5()],
                         ids=lambda s: type(s).__name__)
def test_same_steps_and_values_as_diffrax(solver):
    s_c, s_p, steps = average(qs.Unrolled(solver), PAIR)
    ref_c, ref_p, ref_steps = average(solver, PAIR)
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
    runs = [qs.evolve(PAIR, ts, config=qs.SolverConfig(solver=s, rtol=1e-10, atol=1e-10))
            for s in (qs.Unrolled(dfx.Dopri8()), dfx.Dopri8())]
    # Sums in another order round differently: agreement at the tolerance, not bit for bit.
    np.testing.assert_allclose(runs[0].states.cov, runs[1].states.cov, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(runs[0].states.mean, runs[1].states.mean, rtol=1e-9)
    assert int(runs[0].num_steps) == int(runs[1].num_steps)


@pytest.mark.parametrize("adjoint", [dfx.RecursiveCheckpointAdjoint(), dfx.ForwardMode()],
                         ids=["reverse", "forward"])
def test_gradients_match_diffrax(adjoint):
    def objective(solver, E):
        config = qs.SolverConfig(solver=solver, rtol=1e-9, atol=1e-9, adjoint=adjoint)
        avg = qs.time_average(with_drive(E), MEASURES, (4.0, 8.0), config=config)
        return avg.value["complete_sync"][0]

    diff = jax.jacrev if isinstance(adjoint, dfx.RecursiveCheckpointAdjoint) else jax.jacfwd
    got = diff(lambda E: objective(qs.Unrolled(dfx.Dopri8()), E))(48.0)
    want = diff(lambda E: objective(dfx.Dopri8(), E))(48.0)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert abs(float(got)) > 0


def test_rejects_solvers_without_one_explicit_tableau():
    for solver in (dfx.Kvaerno5(), dfx.Euler(), "Dopri8"):
        with pytest.raises(ValueError, match="explicit Runge"):
            qs.Unrolled(solver)


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
