r"""Parameter sweeps: one model, many parameter values, one labelled result.

:func:`sweep` evaluates ``fn(model)`` at every point of a set of parameter values and returns an
``xarray.Dataset`` (dimensions named after the swept parameters, coordinates = their values).
The parts: :mod:`._axes` (which entries of which parameters, the points, the batched models),
:mod:`._execute` (chunks split over devices), :mod:`._dataset` (names, dimensions, the
Dataset), :mod:`._checkpoint` (resumable runs), :mod:`._processes` (the processes of a
multi-process job).

**Batching rule.** ``mode="grid"`` takes the cartesian product of the axes (result shape
``(len(axes[a]), len(axes[b]), …)``, dimensions in the order of ``axes``); ``mode="zip"`` pairs
the i-th values of all axes (one dimension ``"point"``; every axis is a coordinate along it).

**Failures are values.** ``fn`` must not raise on a failed solve: call :func:`qsync_jax.evolve` /
:func:`qsync_jax.time_average` with ``throw=False`` and return the result, whose status the sweep
records. A point whose status is not ``success``, or whose outputs are not finite, gets NaN
(floating) outputs and its reason in the ``status`` variable; its neighbours are unaffected.

**Devices.** By default every device of ``jax.devices()`` is used. On a CPU, JAX shows a single
device, which runs a sweep on one core; call :func:`qsync_jax.use_cpu_devices` right after
``import jax`` to make every core a device, each running its own share (it also sizes XLA's thread
pool so that batched linear algebra cannot deadlock on several CPU devices; ``sweep`` warns when
that pool is too small).

**Several processes and hosts** (multi-host notes). Call ``jax.distributed.initialize(...)`` in
every process and then the same ``sweep`` call in each: process ``i`` of ``P`` runs chunks
``i, i + P, …`` on its own devices, so every device of the job works and no point runs twice;
every process returns the whole, identical Dataset. A call that differs between processes
(axes, model, ``fn``'s program, batch size, checkpoint path) is refused in every process before
any work. With a checkpoint (a path every process sees, e.g. on a shared file system) each
process writes its own chunks and records (one writer per file; process 0 writes the manifest);
a restarted job — after any process was killed — reloads every finished chunk and computes only
the rest. Processes communicate only at the start and the end (never around a chunk), so long
chunks cannot time out the CPU collectives. ``qsync sweep`` starts such jobs (``--coordinator``,
``--num-processes``, ``--process-id``, SLURM and Open MPI detected, ``--local-processes`` on one
host); see the sweeps guide.
"""

import math
import os
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import numpy as np
import xarray as xr
from jaxtyping import PyTree
from tqdm import tqdm

from . import _processes
from ._axes import batched_model, parse_axes, points
from ._checkpoint import Checkpoint, program_digest, value_digest
from ._dataset import Results, layout
from ._execute import Chunks, Executor, check_devices, trace


def sweep(
    fn: Callable[[eqx.Module], PyTree],
    model: eqx.Module,
    axes: Mapping[str, Sequence[float]],
    *,
    mode: str = "grid",
    batch_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    dims: Mapping[str, str | Sequence[str]] | None = None,
) -> xr.Dataset:
    r"""Evaluate ``fn`` over a grid (or a list) of parameter values; a labelled ``Dataset``.

    **Main arguments:**

    - ``fn``: ``fn(model) -> result`` for one point. ``result`` is a pytree of arrays, or the
      result of a solve made with ``throw=False``, whose status (and step count) is recorded:
      of a :class:`qsync_jax.TimeAverage` the outputs are its ``value``, of a
      :class:`qsync_jax.Trajectory` its ``states``, of any other :class:`qsync_jax.AbstractResult`
      (e.g. :class:`qsync_jax.SteadyStateSolution`, or your own subclass) its ``outputs()``.
      Pass a module-level function,
      or a ``jax.tree_util.Partial`` of one: its array arguments may change between calls
      without recompiling. A new lambda per call recompiles. Example::

          def measures(t, state):
              return {"S_c": qs.complete_sync(state, 1, 3), "S_p": qs.phase_sync(state, 1, 3)}

          def fn(model):
              return qs.time_average(model, measures, (1000.0, 2000.0), throw=False)

    - ``model``: the model at the base point; parameters not swept keep its values.
    - ``axes``: ``{key: 1-D values, ...}``. A key is an array field of ``model`` (e.g.
      ``"mu"``), which every value sets as a whole (broadcast to the field's shape: a scalar
      sets every site; refused if the base value is not uniform, e.g. ``omega=(1.0, 1.005)``),
      or one entry of it, ``"omega[1]"`` (``"coupling[0, 1]"`` for a matrix), the others keeping
      their base values. Example: ``{"omega[1]": 1.0 + np.linspace(-0.02, 0.02, 41),
      "mu": np.linspace(0, 0.05, 26)}``. A point's model equals the model built directly with
      the same parameters; the model's constructor checks each axis's extreme values.

    **Other arguments:**

    - ``mode``: ``"grid"`` (cartesian product, one dimension per axis) or ``"zip"`` (the i-th
      values of all axes form point i; equal lengths; one dimension ``"point"``).
    - ``batch_size``: points per chunk (memory is bounded by one chunk; the compiled chunk is
      reused by sweeps with the same chunk size). Default: equal chunks of at most 256 points
      per device on CPUs, 131072 per device on accelerators. On a CPU each device's share runs
      as consecutive vmapped groups of at most 64 points (the chunk is padded to equal
      groups with its last point; the padding never reaches the Dataset).
    - ``devices``: devices to split every chunk over; default ``jax.local_devices()`` (all
      devices, with one process; this process's, in a multi-process job).
    - ``progress``: show a progress bar over chunks (points done, points/s, time left).
    - ``checkpoint``: a directory. Finished chunks are written there as they complete; calling
      ``sweep`` again with the same arguments after an interruption loads them (after checking
      each against the checksum and point range recorded with it, and its contents) and
      computes only the rest, giving the same Dataset as an uninterrupted run. A chunk that
      fails these checks is recomputed, with a warning naming its file. A directory made by a
      different sweep (axes, mode, batch size, model, or the program ``fn`` runs — its code and
      everything it reads, e.g. a global ``SolverConfig``) is refused, as is a damaged manifest.
    - ``dims``: names for the per-point axes of outputs, ``{"S_c": ("pair",)}`` (see Returns).

    **Returns** an ``xarray.Dataset`` with dimensions named after the axes (grid) or
    ``"point"`` (zip), coordinates = the swept values, one variable per output leaf (named by its
    dict keys or attribute names joined by ``_``, e.g. ``S_c``, ``state_cov``) whose per-point
    axes are ``t`` (the save times of a ``Trajectory``), then ``quadrature`` (mean) or
    ``quadrature_i``, ``quadrature_j`` (covariance) for a ``GaussianState``, the names given in
    ``dims``, or else ``<name>_0, …``; ``status`` (names of :class:`qsync_jax.Status` members,
    ``"success"`` where the point worked) and ``num_steps`` (solver steps, −1 when ``fn``
    returns plain arrays). Attributes: ``sweep_mode``, ``model`` (its type) and
    ``model.<field>`` (the base model's parameters), ``qsync_jax_version``, ``jax_version``.
    Write it with ``ds.to_netcdf(path)``.

    Raises ``ValueError`` before any computation for unknown parameters or entries, values that
    are not non-empty finite 1-D arrays, a whole-field axis over a non-uniform base value, two
    axes setting the same entry, unequal lengths in zip mode, values the model's constructor
    rejects (checked at each axis's smallest and largest value), a ``Status`` inside outputs
    that are not a :class:`qsync_jax.AbstractResult`, ``dims`` that do not fit the outputs, a
    foreign checkpoint or a damaged checkpoint manifest.
    """
    with _processes.together():  # a process that fails here stops all
        if not callable(fn):
            raise TypeError(f"`fn` must be a function fn(model) -> result; got {fn!r}.")
        parsed = parse_axes(model, axes, mode)
        devices = _local(check_devices(jax.local_devices() if devices is None else devices))
        grid_shape, flat = points(parsed, mode)
        n_points = math.prod(grid_shape)
        chunks = Chunks.plan(batch_size, n_points, devices)
        keys = tuple(a.key for a in parsed)
        program, out_shapes = trace(fn, batched_model(model, parsed, flat, np.zeros(1, int)))
        lay = layout(out_shapes, keys, dims)
        results = Results(lay, n_points)

        identity = {
            "axes": value_digest((keys, [a.values for a in parsed], mode)),
            "batch_size": chunks.size,
            "model": value_digest(model),
            "fn": program_digest(program),
            "outputs": lay.describe(),
        }
    _processes.same_everywhere(
        {k: str(v) for k, v in identity.items()} | {"checkpoint": str(checkpoint)}
    )

    store, todo = None, _processes.mine(chunks.count)
    if checkpoint is not None:
        store = Checkpoint(checkpoint, identity, lay, chunks, jax.process_index())
        with _processes.together():
            store.check()
        store.open()
        _processes.wait_for_all()  # the directory exists before any process writes a chunk
        finished = store.finished(todo)
        for k, arrays in finished.items():
            results.put(chunks.bounds(k)[0], arrays)
        todo = [k for k in todo if k not in finished]

    executor = Executor(fn, model, parsed, flat, chunks, devices, lay.names)
    share = sum(hi - lo for lo, hi in map(chunks.bounds, _processes.mine(chunks.count)))
    left = sum(hi - lo for lo, hi in map(chunks.bounds, todo))
    desc = "sweep" if jax.process_count() == 1 else f"sweep {jax.process_index()}"
    with tqdm(total=share, initial=share - left, unit="pt", desc=desc, disable=not progress,
              dynamic_ncols=True) as bar:
        for k, arrays in executor.run(todo):
            if store is not None:
                store.save(k, arrays)
            results.put(chunks.bounds(k)[0], arrays)
            bar.update(arrays["status"].shape[0])
    _processes.gather(results, chunks)
    return results.dataset(parsed, grid_shape, mode, model)


def _local(devices: list) -> list:
    """``devices``, checked to belong to this process (each process runs its own chunks)."""
    foreign = [d for d in devices if d.process_index != jax.process_index()]
    if foreign:
        raise ValueError(
            f"devices must belong to this process (jax.local_devices()); got {foreign} of "
            "other processes. In a multi-process job every process sweeps on its own devices."
        )
    return devices
