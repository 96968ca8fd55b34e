"""jaxlib's batched-LAPACK deadlock: the steady-state solves never split a call over the pool."""

import os
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qsync_jax as qs
from qsync_jax._devices import JAXLIB_SPLIT_WORK, in_unsplit_batches

XIS = jnp.linspace(-0.5, 0.5, 15000)


def bath(xi):
    return qs.CorrelatedBathOscillators(omega=(1.0, 1.2), g=0.2, gamma=0.5, xi=xi,
                                        n_th=(1.0, 0.0))


def _lapack_calls(fn, *args):
    """(kernel, batch, n) of every LAPACK call in the compiled program of ``fn``."""
    text = jax.jit(fn).lower(*args).as_text()
    calls = re.findall(r"custom_call @(lapack_\w+)\([^)]*\)[^\n]*?:\s*\(tensor<([0-9x]+)x", text)
    shapes = [(name, [int(d) for d in dims.split("x")]) for name, dims in calls]
    return [(name, int(np.prod(shape[:-2])), shape[-1]) for name, shape in shapes]


def test_vmapped_steady_states_never_reach_jaxlibs_split():
    # jaxlib splits a call over its thread pool from JAXLIB_SPLIT_WORK flops on (its estimate:
    # 10 n³ for general eigenvalues, n³ for LU, at most n³ for a triangular solve).
    calls = _lapack_calls(jax.vmap(lambda xi: qs.steady_state(bath(xi))), XIS)
    assert {name for name, _, _ in calls} >= {"lapack_dgeev_ffi", "lapack_dgetrf_ffi"}
    for name, batch, n in calls:
        work = (10 if "geev" in name else 1) * n**3
        assert batch * work < JAXLIB_SPLIT_WORK, (name, batch, n)


def test_unsplit_batches_equal_plain_vmap_and_differentiate():
    def fn(A, b):
        return jnp.linalg.solve(A, b), jnp.max(jnp.linalg.eigvals(A).real)

    key = jax.random.split(jax.random.key(0), 2)
    A = jax.random.normal(key[0], (301, 6, 6)) + 6 * jnp.eye(6)
    b = jax.random.normal(key[1], (6,))
    safe = in_unsplit_batches(fn, 10 * 6**3)  # chunks of 92 points: 3 full, 25 left
    got, want = jax.vmap(safe, (0, None))(A, b), jax.vmap(fn, (0, None))(A, b)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # nested vmaps, alone, and derivatives (forward and reverse) are those of fn
    nested = jax.vmap(jax.vmap(safe, (0, None)), (0, None))(A.reshape(7, 43, 6, 6), b)
    np.testing.assert_array_equal(nested[0].reshape(301, 6), want[0])
    np.testing.assert_array_equal(safe(A[3], b)[0], fn(A[3], b)[0])
    loss = lambda f: lambda A: jnp.sum(jax.vmap(f, (0, None))(A, b)[0] ** 2)  # noqa: E731
    np.testing.assert_allclose(jax.grad(loss(safe))(A), jax.grad(loss(fn))(A),
                               rtol=1e-12)
    tangent = jnp.ones((6, 6))
    np.testing.assert_allclose(jax.jvp(lambda A: safe(A, b)[0], (A[0],), (tangent,))[1],
                               jax.jvp(lambda A: fn(A, b)[0], (A[0],), (tangent,))[1])


_JAX_FIRST = """
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
jnp.zeros(1).block_until_ready()  # JAX's CPU pool starts at its default size (cores)
import qsync_jax as qs
xis = jnp.linspace(-0.5, 0.5, 15000)
states = jax.vmap(lambda xi: qs.steady_state(qs.CorrelatedBathOscillators(
    omega=(1.0, 1.2), g=0.2, gamma=0.5, xi=xi, n_th=(1.0, 0.0))))(xis)
assert bool(jnp.all(jnp.isfinite(states.cov)))
"""


def test_vmapped_steady_states_do_not_hang_when_jax_started_first():
    # Before the chunked solve, this hung in some runs on a 2-core machine (the pool sized by
    # qsync_jax's import comes too late); see the module docstring of qsync_jax._devices.
    env = {k: v for k, v in os.environ.items() if k != "NPROC"} | {"JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_JAX_FIRST)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("vmapped steady states hung with JAX started before qsync_jax")
    assert proc.returncode == 0, err
