r"""Running ``fn`` over chunks of points, split over devices.

Points are cut into chunks of ``size`` points; a chunk is padded (with its last point) to a
multiple of the device count (on CPUs: of devices × groups × lanes), split over the devices
(this process's, in a multi-process job: :mod:`._processes`) with ``jax.shard_map`` (each
device runs its share with no communication), and only ``fn``'s outputs come back, so memory
is bounded by the chunk, not by the sweep. On a CPU a device's share runs as consecutive groups
of at most ``_LANES_PER_CPU_LOOP`` points, ``fn`` vmapped over each group (one solver loop per
group, whose state stays in the core's cache and whose lanes wait only for the slowest point
of their group); an accelerator vmaps its whole share in one loop. The compiled chunk is
cached: another sweep with the same ``fn``, model structure and chunk size does not recompile,
whatever the values and whichever parameters are swept. One chunk is computed while the
previous one is copied to the host.

At one point ``fn``'s result is read through the result protocol of :mod:`qsync_jax._results`
(a plain pytree counts as a successful output); a point whose status is not ``success``, or
whose outputs are not finite, gets NaN (floating) outputs.
"""

import dataclasses
from collections.abc import Iterator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

from .._devices import warn_if_pool_too_small
from .._results import AbstractResult
from .._status import Status, mark_nonfinite, status_names
from ._axes import batched_model

_AXIS = "points"
_POINTS_PER_DEVICE = {"cpu": 256}
"""Default chunk (``batch_size=None``): points per device on CPUs (a few solver loops of
``_LANES_PER_CPU_LOOP`` points: results come back, and checkpoints are written, every few
seconds of a typical solve); accelerators get ``_POINTS_PER_ACCELERATOR`` (one solver loop
over many lanes: each step is a few kernel launches whatever the batch, so larger chunks finish
sweeps sooner)."""
_POINTS_PER_ACCELERATOR = 131072
_LANES_PER_CPU_LOOP = 64
"""Points vmapped together in one solver loop on a CPU device: more lanes spill the loop's
state (stages of every lane) out of the core's cache and cost more per point and step; fewer
leave each step's operations too small (``benchmarks/bench_sweep.py`` times the default)."""


def check_devices(devices) -> list:
    devices = jax.devices() if devices is None else list(devices)
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise ValueError(f"devices must be a non-empty sequence of jax devices; got {devices!r}.")
    warn_if_pool_too_small(devices)
    return devices


@dataclasses.dataclass(frozen=True)
class Chunks:
    """``n_points`` points cut into chunks of ``size``: chunk k holds points [k·size, …)."""

    n_points: int
    size: int
    padded: int  # points per launch: ``size`` rounded up to devices × groups × lanes
    groups: int  # solver loops run one after another on each device (each vmapped)

    @classmethod
    def plan(cls, batch_size, n_points: int, devices) -> "Chunks":
        """``batch_size`` points per chunk, or by default equal chunks of at most the default;
        on CPUs each device's share in equal groups of at most ``_LANES_PER_CPU_LOOP``."""
        if batch_size is None:
            per_device = _POINTS_PER_DEVICE.get(devices[0].platform, _POINTS_PER_ACCELERATOR)
            largest = len(devices) * per_device
            size = -(-n_points // -(-n_points // largest))
        elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}.")
        elif batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer or None; got {batch_size}.")
        else:
            size = int(min(batch_size, n_points))
        share = -(-size // len(devices))
        groups = -(-share // _LANES_PER_CPU_LOOP) if devices[0].platform == "cpu" else 1
        lanes = -(-share // groups)
        return cls(n_points, size, len(devices) * groups * lanes, groups)

    @property
    def count(self) -> int:
        return -(-self.n_points // self.size)

    def bounds(self, k: int) -> tuple[int, int]:
        """Points [lo, hi) of chunk ``k``."""
        return k * self.size, min((k + 1) * self.size, self.n_points)


# --------------------------------------------------------------------------- one point


def _split(result) -> tuple[PyTree, Status, jax.Array, jax.Array | None]:
    """Outputs, status, step count and save times of ``fn``'s result.

    ``ValueError`` for a ``Status`` inside plain outputs: it would be recorded as a number and
    its failures missed; such a result must follow the protocol.
    """
    if isinstance(result, AbstractResult):
        return result.outputs(), result.status, result.num_steps, result.save_times()
    nodes, _ = jax.tree_util.tree_flatten_with_path(result, is_leaf=_is_status)
    statuses = [jax.tree_util.keystr(path) or "fn(model)" for path, x in nodes if _is_status(x)]
    if statuses:
        raise ValueError(
            f"fn returns a Status ({', '.join(statuses)}) inside a plain pytree, so the sweep "
            "cannot record it: return a result type instead — a subclass of "
            "qsync_jax.AbstractResult with fields `status` and `num_steps` and methods "
            "`outputs()` (the arrays to record) and `save_times()` (None)."
        )
    return result, Status.success, jnp.asarray(-1), None


def _is_status(x) -> bool:
    return isinstance(x, Status)


def _nan_where_failed(status: Status, outputs: PyTree) -> PyTree:
    ok = status == Status.success

    def mask(x):
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            return x
        return jnp.where(ok, x, jnp.asarray(jnp.nan, x.dtype))

    return jax.tree_util.tree_map(mask, outputs)


def _point(fn, model):
    """``fn`` at one point: (outputs with NaN where failed, status, num_steps, ts)."""
    outputs, status, num_steps, ts = _split(fn(model))
    outputs = jax.tree_util.tree_map(jnp.asarray, outputs)
    status = mark_nonfinite(status, outputs)
    return _nan_where_failed(status, outputs), status, jnp.asarray(num_steps), ts


def _vmapped(fn, models):
    dynamic, static = eqx.partition(models, eqx.is_array)
    return jax.vmap(lambda d: _point(fn, eqx.combine(d, static)))(dynamic)


def trace(fn, models: eqx.Module):
    """The program ``fn`` runs on the stacked ``models`` (``fn``'s arrays as constants) and its
    output shapes, by tracing (no computation)."""
    dynamic, static = eqx.partition(models, eqx.is_array)
    return jax.make_jaxpr(lambda d: _vmapped(fn, eqx.combine(d, static)), return_shape=True)(
        dynamic
    )


@eqx.filter_jit
def _run_chunk(fn, mesh, models, groups: int):
    """``fn`` at every point of the stacked ``models``, split over the devices of ``mesh``; on
    each device ``groups`` vmapped solver loops, one after another.

    Arrays inside ``fn`` (a ``jax.tree_util.Partial``) are inputs, replicated on every device.
    """
    fn_dynamic, fn_static = eqx.partition(fn, eqx.is_array)
    dynamic, static = eqx.partition(models, eqx.is_array)

    def local(fn_dynamic, dynamic):
        fn = eqx.combine(fn_dynamic, fn_static)
        if groups == 1:
            return _vmapped(fn, eqx.combine(dynamic, static))
        grouped = jax.tree_util.tree_map(lambda x: x.reshape(groups, -1, *x.shape[1:]), dynamic)
        out = jax.lax.map(lambda d: _vmapped(fn, eqx.combine(d, static)), grouped)
        return jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), out)

    spec = PartitionSpec(_AXIS)
    return jax.shard_map(
        local, mesh=mesh, in_specs=(PartitionSpec(), spec), out_specs=spec, check_vma=False
    )(fn_dynamic, dynamic)


class Executor:
    """Runs ``fn`` on chunks of the points ``flat`` of ``axes`` around ``model``."""

    def __init__(self, fn, model, axes, flat, chunks: Chunks, devices, names: tuple[str, ...]):
        self.fn, self.model, self.axes, self.flat = fn, model, axes, flat
        self.chunks = chunks
        self.names = names
        self.mesh = Mesh(np.asarray(devices), (_AXIS,))
        self.sharding = NamedSharding(self.mesh, PartitionSpec(_AXIS))

    def launch(self, k: int):
        """Start chunk ``k`` (asynchronously); the device arrays of its results."""
        lo, hi = self.chunks.bounds(k)
        idx = np.minimum(np.arange(lo, lo + self.chunks.padded), hi - 1)  # pad: the last point
        models = jax.tree_util.tree_map(
            lambda x: jax.make_array_from_callback(x.shape, self.sharding, lambda i: x[i])
            if eqx.is_array(x) else x,
            batched_model(self.model, self.axes, self.flat, idx),
        )
        return _run_chunk(self.fn, self.mesh, models, self.chunks.groups)

    def collect(self, k: int, out) -> dict[str, np.ndarray]:
        """Host arrays of chunk ``k``'s points: one per output, ``status`` (names),
        ``num_steps`` and, for time series, the save times ``t`` of every point."""
        outputs, status, num_steps, ts = out
        lo, hi = self.chunks.bounds(k)
        n = hi - lo
        leaves = jax.tree_util.tree_leaves(outputs)
        arrays = {name: np.asarray(x)[:n] for name, x in zip(self.names, leaves)}
        arrays["status"] = status_names(status)[:n]
        arrays["num_steps"] = np.asarray(num_steps)[:n].astype(np.int64)
        if ts is not None:
            arrays["t"] = np.asarray(ts)[:n]
        return arrays

    def run(self, todo: list[int]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """``(k, arrays)`` for every chunk of ``todo``; chunk k+1 runs while k is collected."""
        pending = None
        for k in todo:
            launched = (k, self.launch(k))
            if pending is not None:
                yield pending[0], self.collect(*pending)
            pending = launched
        if pending is not None:
            yield pending[0], self.collect(*pending)
