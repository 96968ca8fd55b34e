"""Test configuration: float64 and strict dtype promotion for every test.

The library never changes JAX's global configuration; the tests do, as users are told to.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("QSYNC_JAX_NO_CACHE", "1")  # `qsync` in-process: no cache in ~/.cache

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
