"""Every CPU core a JAX device, so that :func:`qsync_jax.sweep` runs on all of them.

On a CPU, JAX shows one device, and one device runs an adaptive solve (a ``while`` loop of small
operations) on one core. :func:`use_cpu_devices` splits the host into ``n`` devices, each of which
runs its share of a sweep's chunk on its own core.

**Why this is more than a flag.** jaxlib's CPU linear-algebra kernels (LU, eigenvalues,
Cholesky, … under ``vmap``) split a large enough batch over XLA's intra-op thread pool and block
until the pieces are done. Each device's computation occupies a thread of that same pool, so
when the pool has no more threads than there are devices, every thread can end up waiting for
pieces that no thread is left to run: the process hangs. (Measured with jaxlib 0.10.2 on 2 cores
with 2 devices: a sharded sweep of Lyapunov steady states hung in 5 runs out of 5 at 200 points,
and in none with a pool of 3 threads.) The pool's size is read from the ``NPROC`` environment
variable when JAX starts its CPU backend; :func:`use_cpu_devices` sets it to twice the device
count (idle threads cost nothing), and :func:`qsync_jax.sweep` warns when it runs on CPU devices
with a pool that is too small.
"""

import os
import warnings

import jax

_POOL_VARIABLE = "NPROC"


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _intra_op_threads() -> int:
    """Threads of XLA's CPU intra-op pool: ``NPROC`` if set, else the usable cores."""
    try:
        return int(os.environ[_POOL_VARIABLE])
    except (KeyError, ValueError):
        return _usable_cores()


def use_cpu_devices(n: int | None = None) -> int:
    """Split the host CPU into ``n`` JAX devices (default: one per usable core).

    Call it right after ``import jax``, before any JAX computation; afterwards
    ``jax.devices()`` lists ``n`` CPU devices and :func:`qsync_jax.sweep` splits every chunk over
    them. It also sizes XLA's intra-op thread pool (``NPROC``) above ``n``, which avoids a hang of
    jaxlib's batched linear algebra on several CPU devices (module docstring). Returns ``n``.

    Raises ``ValueError`` for an ``n`` that is not a positive integer, and ``RuntimeError`` when
    JAX has already started its backends (restart the Python process, or the Jupyter kernel).
    """
    if n is None:
        n = _usable_cores()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer (number of CPU devices); got {n!r}.")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError as error:
        raise RuntimeError(
            "use_cpu_devices must be called before JAX runs anything (it sets the number of CPU "
            "devices JAX starts with); call it right after `import jax`, in a fresh process or "
            f"kernel. ({error})"
        ) from None
    os.environ[_POOL_VARIABLE] = str(max(2 * n, _intra_op_threads()))
    return n


def warn_if_pool_too_small(devices) -> None:
    """Warn when CPU ``devices`` may deadlock in batched linear algebra (module docstring)."""
    cpus = [d for d in devices if d.platform == "cpu"]
    if len(cpus) > 1 and _intra_op_threads() <= len(cpus):
        warnings.warn(
            f"sweeping on {len(cpus)} CPU devices with an intra-op thread pool of "
            f"{_intra_op_threads()} threads: jaxlib's batched linear algebra (eigenvalues, LU, "
            "Cholesky under vmap) can hang when the pool is not larger than the number of "
            "devices. Create the devices with `qsync_jax.use_cpu_devices(n)` right after "
            f"`import jax`, or set {_POOL_VARIABLE}={2 * len(cpus)} before starting Python.",
            RuntimeWarning,
            stacklevel=4,
        )
