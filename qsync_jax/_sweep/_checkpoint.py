r"""Checkpoints: finished chunks on disk, verified before they are reused.

A checkpoint directory holds

- ``manifest.json``, written once: what the sweep is (digests of the axes and mode, of the base
  model's parameter values and structure, and of the program ``fn`` runs; the chunk size; the
  outputs' names, shapes and dtypes), and for information the versions that wrote it;
- ``chunk_<k>.npz``: the values of chunk k's points, written atomically (temporary file, rename);
- ``chunks.jsonl``, the manifest's chunk records: one line per finished chunk, appended after
  its file was written, with the chunk's point range, the shape and dtype of every array and the
  file's SHA-256. In a job of several processes (:mod:`._processes`) process ``i > 0`` appends
  to its own ``chunks.<i>.jsonl``: every file has one writer. Process 0 writes the manifest.

**What identifies ``fn``.** The program it runs: its jaxpr on the batched model of one point,
i.e. the operations, the value of every constant (also inside nested programs, e.g. a solver's
tableau or a ``Partial``'s window) and every literal (tolerances, step limits), with function
names removed. So every change that alters results — ``fn``'s code, a module-level
``SolverConfig`` or helper function it reads, the window of a ``Partial``, a qsync_jax or JAX
version that computes differently — changes the fingerprint, while where ``fn`` is defined
(``__main__`` or a module) and what it is called do not.

**Resuming.** A directory made for a different sweep is refused, naming what differs; a damaged
manifest is refused, naming the file. A chunk is reused only when its record, its checksum and
its contents agree with the sweep (point range, every output with its shape and dtype, status
names, no non-finite value marked ``success``); any other chunk file is recomputed, with a
warning naming the file and the reason.
"""

import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, Jaxpr

from .._status import Status
from ._dataset import Layout, _version
from ._execute import Chunks

FORMAT = 2
_STATUS_NAMES = frozenset(Status._name_to_item)
_NAME = re.compile(r"(?<!\w)name=[^\s\]]+")
_SHARED = re.compile(r"^let (\S+) = \{ lambda", re.M)  # sub-programs printed once, by name
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


# --------------------------------------------------------------------------- fingerprints


def _constants(program):
    """The constants of a (closed) jaxpr and of every program nested in its equations."""
    if isinstance(program, ClosedJaxpr):
        yield from program.consts
        program = program.jaxpr
    for eqn in program.eqns:
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                if isinstance(sub, (ClosedJaxpr, Jaxpr)):
                    yield from _constants(sub)


def _update(h, arr) -> None:
    arr = np.asarray(arr)
    h.update(repr((arr.dtype.str, arr.shape)).encode())
    h.update(np.ascontiguousarray(arr).tobytes())


def program_digest(program: ClosedJaxpr) -> str:
    """SHA-256 of what ``program`` computes: its text without function names, and its
    constants' values (module docstring)."""
    text = str(program.jaxpr)
    labels = {label: f"program{k}" for k, label in enumerate(dict.fromkeys(_SHARED.findall(text)))}
    if labels:
        pattern = "|".join(map(re.escape, sorted(labels, key=len, reverse=True)))
        text = re.sub(rf"(?<![\w.])({pattern})(?!\w)", lambda m: labels[m[1]], text)
    h = hashlib.sha256(_NAME.sub("name=_", text).encode())
    for const in _constants(program):
        _update(h, const)
    return h.hexdigest()


def value_digest(tree) -> str:
    """SHA-256 of a pytree's structure (static fields included) and its array values."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    h = hashlib.sha256(_ADDRESS.sub("", str(treedef)).encode())
    for leaf in leaves:
        if eqx.is_array(leaf) or isinstance(leaf, (np.ndarray, np.generic)):
            _update(h, leaf)
        else:
            h.update(_ADDRESS.sub("", repr(leaf)).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- files


def _atomic_write(path: Path, write: Callable) -> None:
    """Write through ``write(file)`` to a temporary file, then rename it onto ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _start_over(path: Path) -> str:
    return f"delete {str(path)!r} to start the sweep over, or use another checkpoint path"


class Checkpoint:
    """A checkpoint directory (module docstring) for the sweep described by ``identity``."""

    def __init__(self, path, identity: dict, layout: Layout, chunks: Chunks, process: int = 0):
        self.path = Path(path)
        self.identity = identity
        self.layout = layout
        self.chunks = chunks
        self.process = process
        self.manifest = self.path / "manifest.json"
        self.records = self.path / ("chunks.jsonl" if process == 0 else f"chunks.{process}.jsonl")

    def check(self) -> None:
        """``ValueError`` for a directory made for another sweep, a damaged manifest, or a
        non-empty directory without one (reads only)."""
        if self.manifest.exists():
            self._check_identity(self.identity)
        elif self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise ValueError(
                f"checkpoint {str(self.path)!r} is a non-empty directory without a sweep "
                "manifest (or not a directory); use an empty or new directory."
            )

    def open(self) -> None:
        """Create the directory and manifest (process 0, after :meth:`check`) and finish this
        process's last record if a kill cut it short."""
        if self.process == 0 and not self.manifest.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            manifest = {
                "format": FORMAT, "sweep": self.identity,
                "written_by": {"qsync_jax": _version("qsync_jax"), "jax": jax.__version__},
            }
            text = json.dumps(manifest, indent=1).encode()
            _atomic_write(self.manifest, lambda f: f.write(text))
        if self.records.exists():
            content = self.records.read_bytes()
            if content and not content.endswith(b"\n"):  # an append cut short by a kill
                with open(self.records, "ab") as file:
                    file.write(b"\n")

    def _check_identity(self, identity: dict) -> None:
        try:
            manifest = json.loads(self.manifest.read_text())
            found = manifest["sweep"]
            if manifest["format"] != FORMAT or not isinstance(found, dict):
                raise ValueError(f"format {manifest['format']!r}, expected {FORMAT}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"checkpoint manifest {str(self.manifest)!r} is damaged or was written by another "
                f"version of qsync_jax ({type(error).__name__}: {error}); "
                f"{_start_over(self.path)}."
            ) from error
        differs = sorted(k for k in identity if found.get(k) != identity[k])
        if differs:
            hint = (
                f" (it was written with batch_size={found.get('batch_size')}: pass that to "
                "resume it)" if differs == ["batch_size"] else ""
            )
            if "fn" in differs:
                hint += (" (fn: the program it runs differs — its code, globals or helpers it "
                         "reads, solver settings, or the qsync_jax/JAX version)")
            raise ValueError(
                f"checkpoint {str(self.path)!r} was made for a different sweep "
                f"(different {', '.join(differs)}){hint}; {_start_over(self.path)}."
            )

    def _file(self, k: int) -> Path:
        return self.path / f"chunk_{k:06d}.npz"

    def _read_records(self) -> dict[int, list[dict]]:
        """The records of each chunk in every process's record file (unreadable lines are
        skipped)."""
        records = {}
        for path in sorted(self.path.glob("chunks*.jsonl")):
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                    records.setdefault(int(record["chunk"]), []).append(record)
                except (ValueError, KeyError, TypeError):
                    continue  # an append cut short, or damage: its chunk counts as unrecorded
        return records

    def finished(self, which: list[int]) -> dict[int, dict[str, np.ndarray]]:
        """The verified chunks among ``which``, ``{k: arrays}``; a warning (naming the file)
        for each chunk file that cannot be used, which will be recomputed."""
        records = self._read_records()
        good = {}
        for k in which:
            file = self._file(k)
            if not file.exists():
                continue
            arrays, problem = self._verify(k, file, records.get(k, []))
            if problem is None:
                good[k] = arrays
            else:
                warnings.warn(f"checkpoint chunk {str(file)!r} {problem}; recomputing it.",
                              RuntimeWarning, stacklevel=3)
        return good

    def _expected(self, k: int) -> dict[str, tuple[tuple[int, ...], str | None]]:
        lo, hi = self.chunks.bounds(k)
        n = hi - lo
        lay = self.layout
        expected = {name: ((n, *shape), dtype)
                    for name, shape, dtype in zip(lay.names, lay.shapes, lay.dtypes)}
        expected["status"] = ((n,), None)  # strings of any length
        expected["num_steps"] = ((n,), "int64")
        if lay.n_times is not None:
            expected["t"] = ((n, lay.n_times), None)
        return expected

    def _verify(self, k: int, file: Path, records: list[dict]):
        """``(arrays, None)`` for a chunk that agrees with one of its records and the sweep,
        else ``(None, what is wrong)``."""
        lo, hi = self.chunks.bounds(k)
        if not records:
            return None, ("has no record in chunks.jsonl or a process's chunks.<i>.jsonl (the "
                          "sweep was interrupted while saving it, or the file was copied here)")
        content = file.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        # the record of this file's content (a chunk recomputed by another process has several)
        record = ([r for r in records if r.get("sha256") == digest] or records)[-1]
        if record.get("points") != [lo, hi]:
            return None, (f"is recorded for points {record.get('points')}, but chunk {k} holds "
                          f"points [{lo}, {hi})")
        if record.get("sha256") != digest:
            return None, ("does not match the checksum recorded when it was written (the file "
                          "was changed, truncated or replaced)")
        try:
            with np.load(io.BytesIO(content)) as data:
                arrays = {name: data[name] for name in data.files}
        except Exception as error:  # a damaged file, whatever numpy raises for it
            return None, f"cannot be read ({type(error).__name__}: {error})"
        return self._check_contents(k, arrays)

    def _check_contents(self, k: int, arrays: dict):
        expected = self._expected(k)
        if set(arrays) != set(expected):
            missing = sorted(set(expected) - set(arrays))
            extra = sorted(set(arrays) - set(expected))
            return None, f"lacks the arrays {missing} (and has unexpected ones {extra})"
        for name, (shape, dtype) in expected.items():
            arr = arrays[name]
            if arr.shape != shape or (dtype is not None and arr.dtype != np.dtype(dtype)):
                return None, (f"holds {name!r} with shape {arr.shape} and dtype {arr.dtype}, "
                              f"expected shape {shape}" + (f" and dtype {dtype}" if dtype else ""))
        status = arrays["status"]
        if status.dtype.kind != "U":
            return None, f"holds status values of dtype {status.dtype}, not names"
        unknown = sorted(set(np.unique(status).tolist()) - _STATUS_NAMES)
        if unknown:
            return None, f"holds unknown status names {unknown}"
        ok = status == "success"
        for name in self.layout.names:
            arr = arrays[name]
            if np.issubdtype(arr.dtype, np.inexact):
                finite = np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)
                if np.any(ok & ~finite):
                    return None, f"holds non-finite values of {name!r} marked success"
        return arrays, None

    def save(self, k: int, arrays: dict[str, np.ndarray]) -> None:
        """Write chunk ``k`` (atomically), then append its record to this process's file."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        content = buffer.getvalue()
        _atomic_write(self._file(k), lambda f: f.write(content))
        record = {
            "chunk": k, "file": self._file(k).name, "points": list(self.chunks.bounds(k)),
            "arrays": {name: [list(a.shape), a.dtype.str] for name, a in arrays.items()},
            "sha256": hashlib.sha256(content).hexdigest(),
        }
        with open(self.records, "a") as file:
            file.write(json.dumps(record) + "\n")
            file.flush()
            os.fsync(file.fileno())
