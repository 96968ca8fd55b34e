"""JAX's persistent compilation cache, in a per-user cache directory.

A first solve spends seconds in XLA's compiler; with the cache on, XLA's output is written to
disk, and a later process that compiles the same program (same model type, shapes, solver options
and devices; parameter *values* do not matter) loads it instead. Tracing still runs in every
process; only the XLA compilation is skipped.

``qsync`` turns the cache on for every command (off with ``qsync --no-compile-cache`` or the
environment variable ``QSYNC_JAX_NO_CACHE=1``). The library never changes JAX's configuration by
itself: a script or notebook opts in with :func:`enable_compile_cache`.

Where: ``$QSYNC_JAX_CACHE_DIR`` if set, else the platform's user cache directory —
``$XDG_CACHE_HOME/qsync_jax/jax`` (default ``~/.cache/qsync_jax/jax``) on Linux,
``~/Library/Caches/qsync_jax/jax`` on macOS, ``%LOCALAPPDATA%\\qsync_jax\\jax`` on Windows. The
directory is created readable by its owner only: JAX executes what it finds there, so it must
never be shared with untrusted users. Deleting it is always safe.
"""

import os
import sys
from pathlib import Path

import jax

DIR_VARIABLE = "QSYNC_JAX_CACHE_DIR"
"""Environment variable that overrides the cache directory."""

OFF_VARIABLE = "QSYNC_JAX_NO_CACHE"
"""Environment variable that turns the cache off (``1``, ``true`` or ``yes``)."""


def cache_disabled() -> bool:
    """Whether ``QSYNC_JAX_NO_CACHE`` asks for no cache."""
    return os.environ.get(OFF_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def default_cache_dir() -> Path:
    """``$QSYNC_JAX_CACHE_DIR``, else the platform's user cache directory (module docstring)."""
    override = os.environ.get(DIR_VARIABLE, "")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "qsync_jax" / "jax"


def enable_compile_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache for this process; return its directory.

    Opt-in for scripts and sweeps: a second run of the same program (same model type, shapes,
    solver options and devices) loads XLA's compiled code from disk instead of compiling it
    again. Every program is cached, however small or quick to compile.

    **Arguments:**

    - ``path``: the cache directory (created if missing, owner-only permissions); default
      ``$QSYNC_JAX_CACHE_DIR`` or the platform's user cache directory, e.g.
      ``~/.cache/qsync_jax/jax`` on Linux.

    Returns ``None`` and changes nothing when the environment variable ``QSYNC_JAX_NO_CACHE``
    is ``1`` (or ``true``/``yes``). Raises ``TypeError`` for a ``path`` that is not a string or
    path, ``ValueError`` for an empty one, and ``OSError`` when the directory cannot be created.

    This changes JAX's global configuration (``jax_compilation_cache_dir`` and the thresholds
    below which programs are not cached) for the rest of the process.
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a string or path, got {type(path).__name__}.")
    if path is not None and not os.fspath(path):
        raise ValueError("`path` must not be empty.")
    if cache_disabled():
        return None
    directory = (default_cache_dir() if path is None else Path(path).expanduser()).absolute()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not os.access(directory, os.W_OK):
        raise PermissionError(f"compilation cache directory not writable: {directory}")
    current = jax.config.jax_compilation_cache_dir
    if current is not None and Path(current) != directory:
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()  # the old directory may already be in use
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size threshold
    return directory
