r"""The processes of a multi-controller JAX job: who runs which chunk, agreement, the gather.

After ``jax.distributed.initialize`` every process runs the same :func:`qsync_jax.sweep` call.
The chunks are dealt out in turn: process ``i`` of ``P`` runs chunks ``i, i + P, i + 2P, …``
on its own devices (``jax.local_devices()``, each chunk split over them with ``shard_map``), so
every device of the job works, no point is computed twice, and the share of each process is
fixed by the chunk numbers alone — a restarted job gives every process the chunks it had, and
a process finds its finished ones in the checkpoint without asking the others.

Processes talk only at the start (they compare what they are about to run: a different call in
one process is refused in every process, naming what differs) and at the end (every process
sends its chunks' values to all, so each returns the whole Dataset). Between the two there is no
communication at all: a long chunk cannot make a collective time out. The final exchange waits
first at a barrier of JAX's coordination service, whose timeout (:data:`WAIT_HOURS`) covers
processes that finish hours apart; the CPU collectives (Gloo) that follow then start together.
Each process sends full-size arrays (its own points filled), so the exchange holds the Dataset
once per process in memory.

With one process every function here is trivial (no communication).
"""

import contextlib
import hashlib
import itertools
from collections.abc import Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils

from .._status import Status

WAIT_HOURS = 48
"""How long a process waits at the end of a sweep for the others to finish their chunks."""

_STATUS = ("", *sorted(Status._name_to_item))  # "" marks a point this process did not fill
_barriers = itertools.count()


def owner(chunk: int) -> int:
    """The process that runs ``chunk``."""
    return chunk % jax.process_count()


def mine(count: int) -> list[int]:
    """The chunks (of ``count``) this process runs."""
    return list(range(jax.process_index(), count, jax.process_count()))


def same_everywhere(what: Mapping[str, str]) -> None:
    """``ValueError`` in every process unless every process passes the same ``what``
    (``{name: text}``), naming the processes and the names that differ."""
    if jax.process_count() == 1:
        return
    names = sorted(what)
    mine_ = np.array([list(hashlib.sha256(what[n].encode()).digest()) for n in names], np.uint8)
    every = np.asarray(multihost_utils.process_allgather(mine_))  # (processes, names, 32)
    differ = ~np.all(every == every[:1], axis=2)  # (processes, names)
    if differ.any():
        others = np.flatnonzero(differ.any(axis=1)).tolist()
        fields = [n for n, d in zip(names, differ.any(axis=0)) if d]
        raise ValueError(
            f"the processes of this job run different sweeps: process(es) {others} differ from "
            f"process 0 in {', '.join(fields)}. Every process must make the same sweep call "
            "(the same config file)."
        )


@contextlib.contextmanager
def together():
    """Run the block in every process; when it raises in any process, raise in every process
    (the original exception where it happened, a ``ValueError`` naming the first failed
    process and its error elsewhere), so no process waits for a failed one."""
    if jax.process_count() == 1:
        yield
        return
    try:
        yield
    except Exception as error:
        _exchange(f"{type(error).__name__}: {error}")
        raise
    failed = _exchange("")
    if failed:
        raise ValueError(f"process {failed[0]} failed: {failed[1]}")


def _exchange(message: str) -> tuple[int, str] | None:
    """Every process's ``message``; the first non-empty one, with its process."""
    data = message.encode()
    lengths = np.asarray(multihost_utils.process_allgather(np.int64(len(data))))
    padded = np.zeros(max(int(lengths.max()), 1), np.uint8)
    padded[: len(data)] = np.frombuffer(data, np.uint8)
    every = np.asarray(multihost_utils.process_allgather(padded))
    for p, n in enumerate(lengths):
        if n:
            return p, every[p, :n].tobytes().decode()
    return None


def wait_for_all() -> None:
    """Wait until every process gets here (the coordination service's barrier; no timeout
    short of :data:`WAIT_HOURS`)."""
    if jax.process_count() == 1:
        return
    from jax._src.distributed import global_state  # the barrier with a timeout of our choice

    global_state.client.wait_at_barrier(
        f"qsync_jax.sweep.{next(_barriers)}", WAIT_HOURS * 3_600_000
    )


def gather(results, chunks) -> None:
    """Fill ``results`` (a :class:`._dataset.Results` holding this process's chunks) with the
    values of every process's chunks."""
    if jax.process_count() == 1:
        return
    wait_for_all()
    point_owner = owner(np.arange(chunks.n_points) // chunks.size)
    codes = {name: k for k, name in enumerate(_STATUS)}
    sent = {**results.arrays, "filled": results.filled,
            "status": np.array([codes[s] for s in results.arrays["status"]], np.int8)}
    if results.layout.n_times is not None:
        sent["t"] = np.full(results.layout.n_times, np.nan) if results.ts is None else results.ts
    every = {k: np.asarray(v) for k, v in multihost_utils.process_allgather(sent).items()}
    for name in (*results.arrays, "filled"):
        values = every[name][point_owner, np.arange(chunks.n_points)]
        if name == "status":
            values = np.asarray(_STATUS, object)[values]
        if name == "filled":
            results.filled = values
        else:
            results.arrays[name] = values
    for ts in every.get("t", ()):
        if not np.isnan(ts).all():
            results.set_times(ts)
