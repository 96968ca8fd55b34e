"""The size of XLA's CPU thread pool, set when :mod:`qsync_jax` is imported; imports no JAX.

XLA reads the pool's size from the ``NPROC`` environment variable when JAX starts its CPU backend,
and jaxlib's batched linear algebra can hang on a pool without a spare thread (the deadlock is
described in :mod:`qsync_jax._devices`). Importing this module sets ``NPROC``, when unset, to the
size for one device, ``max(cores, 4)``; it has no effect once JAX has started its backend.
"""

import os

POOL_VARIABLE = "NPROC"


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def intra_op_threads() -> int:
    """Threads of XLA's CPU intra-op pool: ``NPROC`` if set, else the usable cores."""
    try:
        return int(os.environ[POOL_VARIABLE])
    except (KeyError, ValueError):
        return usable_cores()


def pool_size(n_devices: int) -> int:
    """Threads that leave one free with two blocked per device (:mod:`qsync_jax._devices`)."""
    return max(2 * n_devices + 2, usable_cores())


os.environ.setdefault(POOL_VARIABLE, str(pool_size(1)))
