"""solve_lyapunov: Kronecker and Bartels–Stewart against SciPy, their derivatives, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import qsync_jax as qs


def random_problem(m, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, m)) - (1.0 + np.sqrt(m)) * np.eye(m)
    B = rng.normal(size=(m, m))
    return jnp.asarray(A), jnp.asarray(B @ B.T)


@pytest.mark.parametrize("m", [2, 8, 20])
@pytest.mark.parametrize("method", ["kronecker", "schur", "auto"])
def test_matches_scipy(m, method):
    A, D = random_problem(m, m)
    expected = scipy.linalg.solve_continuous_lyapunov(np.asarray(A), -np.asarray(D))
    C = qs.solve_lyapunov(A, D, method=method)
    np.testing.assert_allclose(C, expected, rtol=0, atol=1e-12 * np.max(np.abs(expected)))


def test_schur_derivatives_match_kronecker():
    """The custom JVP (another Lyapunov solve) == JAX's derivative of the LU solve, both modes."""
    A, D = random_problem(6, 1)

    def f(A, D, method):
        return jnp.sum(jnp.sin(qs.solve_lyapunov(A, D, method=method)))

    rev = jax.grad(f, argnums=(0, 1))(A, D, "schur")
    fwd = jax.jacfwd(f, argnums=(0, 1))(A, D, "schur")
    ref = jax.grad(f, argnums=(0, 1))(A, D, "kronecker")
    for a, b, c in zip(rev, fwd, ref):
        np.testing.assert_allclose(a, c, atol=1e-12)
        np.testing.assert_allclose(b, c, atol=1e-12)


def test_schur_batches():
    A = jnp.stack([random_problem(5, s)[0] for s in range(3)])
    D = jnp.stack([random_problem(5, s)[1] for s in range(3)])
    ref = qs.solve_lyapunov(A, D, method="kronecker")
    np.testing.assert_allclose(qs.solve_lyapunov(A, D, method="schur"), ref, atol=1e-12)
    vmapped = jax.vmap(lambda a, d: qs.solve_lyapunov(a, d, method="schur"))(A, D)
    np.testing.assert_allclose(vmapped, ref, atol=1e-12)


def test_bad_input():
    A, D = random_problem(4)
    with pytest.raises(ValueError, match="method"):
        qs.solve_lyapunov(A, D, method="bogus")
    with pytest.raises(ValueError, match="`A` and `D`"):
        qs.solve_lyapunov(A, D[:3, :3])
