"""Test configuration: float64 and strict dtype promotion for every test.

The library never changes JAX's global configuration; the tests do, as users are told to.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
