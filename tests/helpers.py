"""Shared test utilities: tree comparison and central finite differences."""

import jax
import jax.numpy as jnp
import numpy as np


def tree_allclose(x, y, *, rtol=1e-10, atol=1e-12):
    """True when two pytrees have the same structure and allclose leaves."""
    xs, tx = jax.tree_util.tree_flatten(x)
    ys, ty = jax.tree_util.tree_flatten(y)
    if tx != ty:
        return False
    return all(
        np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol) for a, b in zip(xs, ys)
    )


def finite_difference_grad(f, x, *, h=1e-6):
    """Central finite-difference gradient of a scalar function of an array `x`."""
    x = jnp.asarray(x, dtype=jnp.float64)
    flat = x.ravel()
    grads = []
    for k in range(flat.size):
        e = jnp.zeros_like(flat).at[k].set(h).reshape(x.shape)
        grads.append((f(x + e) - f(x - e)) / (2 * h))
    return jnp.stack(grads).reshape(x.shape)
