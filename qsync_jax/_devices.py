"""XLA's CPU thread pool sized so that batched linear algebra cannot deadlock; every core a device.

**The deadlock.** jaxlib's CPU linear-algebra kernels (LU, eigenvalues, Cholesky, … under
``vmap``) split a large enough batch over XLA's intra-op thread pool and block until the pieces
are done. The computation that calls them runs on a thread of that same pool, and the host side
of an execution can hold a second one while it waits; when no thread is left free, nobody runs
the pieces and the process hangs. With the default pool of one thread per core this happens on
2-core machines even on one device, and on several CPU devices whenever the pool has no spare
thread (seen with jaxlib 0.10.2; ``tests/test_sweep.py`` runs both cases in subprocesses with a
timeout, and they hang without the pool sizing below).

Two guards, the second independent of when JAX was started:

- **Batches too small to split** (:func:`in_unsplit_batches`). jaxlib splits one kernel call only
  when its batch does at least ``JAXLIB_SPLIT_WORK`` = 2·10⁵ flops by its own estimate
  (``GetLapackBatchChunkSize`` in ``jaxlib/cpu/lapack_kernels.cc``, jaxlib 0.10; later releases
  compile the split out of open-source builds). The library's batched steady-state solves run
  under ``vmap`` as a loop over chunks below that size, so they never wait on the pool, whatever
  its size, however many devices share it, and whether or not JAX ran before
  :mod:`qsync_jax` was imported (a notebook that ran ``jnp.zeros(1)`` first).
- **A pool with a spare thread**, for every other batched linear algebra (a user's own under
  ``vmap``, derivatives). The pool's size is read from the ``NPROC`` environment variable when
  JAX starts its CPU backend. Importing :mod:`qsync_jax` sets it, when unset, to
  ``max(cores, 4)``, enough for one device (this does nothing if JAX has already run a
  computation); :func:`use_cpu_devices` raises it to at least 2·n + 2 for n devices;
  :func:`qsync_jax.sweep` warns when it runs on CPU devices with a pool of at most 2 threads per
  device.

**Every core a device.** On a CPU, JAX shows one device, and one device runs an adaptive solve (a
``while`` loop of small operations) on one core. :func:`use_cpu_devices` splits the host into
``n`` devices, each of which runs its share of a sweep's chunk on its own core.

**One thread per device.** XLA's CPU scheduler orders a program for concurrency by default: the
independent operations of a loop body may run on different threads of the pool at once. When
every core is already a device running its own share, this only hands each device's work back
and forth between threads, and the cores wait on the hand-offs (``benchmarks/bench_sweep.py``
reports CPU time / wall time of a sweep's chunk). One point on one device runs as fast either
way. :func:`use_cpu_devices` therefore adds ``SEQUENTIAL_SCHEDULE`` to ``XLA_FLAGS`` (XLA reads
it when JAX starts its backend; a setting of that flag already in ``XLA_FLAGS`` is kept).
"""

import os
import warnings

import jax

from ._pool import POOL_VARIABLE as _POOL_VARIABLE
from ._pool import intra_op_threads as _intra_op_threads
from ._pool import pool_size as _pool_size
from ._pool import usable_cores as _usable_cores

SEQUENTIAL_SCHEDULE = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
"""The XLA flag for one thread per CPU device (module docstring)."""

JAXLIB_SPLIT_WORK = 200_000
"""Flops (jaxlib's estimate) from which one batched LAPACK call is split over the thread pool."""


def use_cpu_devices(n: int | None = None) -> int:
    """Split the host CPU into ``n`` JAX devices (default: one per usable core).

    Call it right after ``import jax``, before any JAX computation; afterwards
    ``jax.devices()`` lists ``n`` CPU devices and :func:`qsync_jax.sweep` splits every chunk over
    them. It also sizes XLA's intra-op thread pool (``NPROC``) to at least 2·n + 2 threads, which
    avoids a hang of jaxlib's batched linear algebra, and has XLA run each device's work on one
    thread at a time (``SEQUENTIAL_SCHEDULE``; module docstring). Returns ``n``.

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
    os.environ[_POOL_VARIABLE] = str(max(_pool_size(n), _intra_op_threads()))
    flags = os.environ.get("XLA_FLAGS", "")
    if SEQUENTIAL_SCHEDULE.split("=")[0] not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {SEQUENTIAL_SCHEDULE}".strip()
    return n


def warn_if_pool_too_small(devices) -> None:
    """Warn when CPU ``devices`` may deadlock in batched linear algebra (module docstring)."""
    cpus = [d for d in devices if d.platform == "cpu"]
    if cpus and _intra_op_threads() <= 2 * len(cpus):
        warnings.warn(
            f"sweeping on {len(cpus)} CPU devices with an intra-op thread pool of "
            f"{_intra_op_threads()} threads: jaxlib's batched linear algebra (eigenvalues, LU, "
            "Cholesky under vmap) can hang unless the pool has more than 2 threads per device. "
            "Import qsync_jax (or call `qsync_jax.use_cpu_devices(n)`) before JAX runs "
            f"anything, or set {_POOL_VARIABLE}={_pool_size(len(cpus))} before starting Python.",
            RuntimeWarning,
            stacklevel=4,
        )


def in_unsplit_batches(fn, work: int):
    """``fn`` whose batched evaluation (``vmap``) never splits a LAPACK call over the pool.

    ``fn`` takes and returns arrays (pytrees of them); ``work`` bounds jaxlib's flop estimate of
    the costliest LAPACK call in one evaluation (LU of n × n: n³; general eigenvalues: 10·n³;
    triangular solve with k right-hand sides: n²·k). Alone, ``fn`` runs as it is. Under ``vmap``
    of ``N`` points it runs as a loop over chunks of ``c = max(1, ⌊(JAXLIB_SPLIT_WORK − 1) /
    work⌋)`` points (``jax.lax.map``), so every LAPACK call does less than ``JAXLIB_SPLIT_WORK``
    and runs on the calling thread (module docstring); the results are those of ``vmap(fn)``,
    bit for bit in practice (the same kernels on the same matrices). A vmap nested around it
    chunks the outer axis in turn. Derivatives are those of ``fn`` (its own JVP, batched as
    usual: reverse mode cannot pass through a batching rule).
    """
    chunk = max(1, (JAXLIB_SPLIT_WORK - 1) // work)

    @jax.custom_batching.custom_vmap
    def batched(*args):
        return fn(*args)

    @batched.def_vmap
    def _(axis_size, in_batched, *args):
        leaves, tree = jax.tree.flatten(args)
        flags = jax.tree.leaves(in_batched)
        if axis_size <= chunk:
            # One chunk; an enclosing vmap sees a function `axis_size` times costlier.
            in_axes = tree.unflatten([0 if b else None for b in flags])
            out = in_unsplit_batches(jax.vmap(fn, in_axes=in_axes), work * axis_size)(*args)
        else:

            def one(point):
                point = iter(point)
                return batched(*tree.unflatten([next(point) if b else x
                                                for x, b in zip(leaves, flags)]))

            moving = [x for x, b in zip(leaves, flags) if b]
            out = jax.lax.map(one, moving, batch_size=chunk)
        return out, jax.tree.map(lambda _: True, out)

    @jax.custom_jvp
    def call(*args):
        return batched(*args)

    @call.defjvp
    def _(primals, tangents):
        return jax.jvp(fn, primals, tangents)

    return call
