"""Products of small matrices, fast both alone and in batches (the covariance vector field)."""

import jax
import jax.numpy as jnp

SMALL_MATRIX = 8
"""Up to this size, A·C is computed by :func:`_small_matmul`; larger products by ``A @ C``."""


def _broadcast_matmul(A, C):
    """A·C as a broadcast product reduced over the minor axis: XLA fuses it into the vector
    field, while a dot product of one small matrix is a separate call whose overhead exceeds its
    arithmetic (``benchmarks/bench_batched_step.py`` measures both)."""
    return jnp.sum(A[:, None, :] * C.T[None, :, :], axis=-1)


@jax.custom_batching.custom_vmap
def _batched_small_matmul(A, C):
    return _broadcast_matmul(A, C)


@_batched_small_matmul.def_vmap
def _(axis_size, in_batched, A, C):
    # Many trajectories at once (vmap): one batched dot product, faster per matrix than the
    # broadcast form, which vectorizes poorly along a leading batch axis
    # (benchmarks/bench_batched_step.py).
    A, C = (x if batched else jnp.broadcast_to(x, (axis_size, *x.shape))
            for x, batched in zip((A, C), in_batched))
    return jnp.matmul(A, C), True


@jax.custom_jvp
def _small_matmul(A, C):
    """A·C for small matrices, fast both alone and under ``vmap`` (a custom batching rule).

    Its derivative is written with plain operations, which JAX can also transpose (reverse
    mode cannot pass through a custom batching rule)."""
    return _batched_small_matmul(A, C)


@_small_matmul.defjvp
def _(primals, tangents):
    (A, C), (dA, dC) = primals, tangents
    return _small_matmul(A, C), _broadcast_matmul(dA, C) + _broadcast_matmul(A, dC)


def matmul(A, C):
    """A·C: :func:`_small_matmul` up to ``SMALL_MATRIX``, ``A @ C`` beyond."""
    return _small_matmul(A, C) if A.shape[-1] <= SMALL_MATRIX else A @ C
