"""The persistent compilation cache: where it lives, its switches, and a hit in a second process.

Everything that turns the cache on runs in a subprocess, so this test session's JAX configuration
stays untouched (conftest sets ``QSYNC_JAX_NO_CACHE=1`` for in-process ``qsync`` calls).
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

import qsync_jax as qs
from qsync_jax._compile_cache import DIR_VARIABLE, OFF_VARIABLE, default_cache_dir

ROOT = Path(__file__).resolve().parents[1]

_HITS = """
import jax, jax.numpy as jnp, qsync_jax as qs
hits = []
jax.monitoring.register_event_listener(
    lambda name, **kw: hits.append(name) if name == "/jax/compilation_cache/cache_hits" else None)
print(qs.enable_compile_cache())
jax.jit(lambda x: jnp.sin(x) * 2.0)(jnp.ones(3)).block_until_ready()
print(len(hits))
"""


def _run(args, cache_dir, **env):
    environ = {k: v for k, v in os.environ.items() if k != OFF_VARIABLE}
    environ |= {DIR_VARIABLE: str(cache_dir), "PYTHONPATH": str(ROOT)} | env
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                          env=environ, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def _entries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def test_second_process_hits_the_cache(tmp_path):
    cache = tmp_path / "cache"
    where, hits = _run(["-c", _HITS], cache)
    assert Path(where) == cache and int(hits) == 0
    assert _entries(cache), "the first process wrote no cache entry"
    assert oct(cache.stat().st_mode & 0o777) == oct(0o700)
    where, hits = _run(["-c", _HITS], cache)
    assert int(hits) >= 1


def test_switched_off_by_environment(tmp_path):
    cache = tmp_path / "cache"
    where, hits = _run(["-c", _HITS], cache, **{OFF_VARIABLE: "1"})
    assert where == "None" and int(hits) == 0
    assert not _entries(cache)


BATH = ["simulate", "--model", "correlated-bath", "--xi", "0.3"]


def test_cli_uses_the_cache_unless_told_not_to(tmp_path):
    cache = tmp_path / "cache"
    _run(["-m", "qsync_jax", "--no-compile-cache", *BATH], cache)
    assert not _entries(cache)
    _run(["-m", "qsync_jax", *BATH], cache)
    assert _entries(cache)


def test_default_directory(monkeypatch, tmp_path):
    monkeypatch.setenv(DIR_VARIABLE, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(DIR_VARIABLE)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert default_cache_dir() == tmp_path / "qsync_jax" / "jax"
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
        assert default_cache_dir() == Path.home() / ".cache" / "qsync_jax" / "jax"


@pytest.mark.parametrize(
    "path, error, match",
    [(3, TypeError, "`path`"), (float("nan"), TypeError, "`path`"), (["a"], TypeError, "`path`"),
     ("", ValueError, "`path`")],
)
def test_hostile_path(path, error, match):
    with pytest.raises(error, match=match):
        qs.enable_compile_cache(path)


def test_path_that_is_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv(OFF_VARIABLE, raising=False)
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(OSError):
        qs.enable_compile_cache(file)
    assert jax.config.jax_compilation_cache_dir is None


def test_off_switch_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(OFF_VARIABLE, "1")
    assert qs.enable_compile_cache(tmp_path / "c") is None
    assert not (tmp_path / "c").exists() and jax.config.jax_compilation_cache_dir is None
