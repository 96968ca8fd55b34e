"""The package's public surface and metadata: ``__all__``, ``__version__``, license, citation."""

import inspect
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest

import qsync_jax as qs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_all_lists_every_public_name_once_and_only_names_of_the_package():
    public = {name for name in dir(qs)  # every name, imported or not yet
              if not name.startswith("_") and not inspect.ismodule(getattr(qs, name))}
    assert sorted(set(qs.__all__)) == sorted(public) == qs.__all__
    foreign = [n for n in qs.__all__
               if not getattr(getattr(qs, n), "__module__", "").startswith("qsync_jax.")]
    assert not foreign, f"qsync_jax exports names defined elsewhere: {foreign}"


def test_import_is_lazy_and_sizes_the_thread_pool():
    # Importing imports no JAX (`qsync --help` answers at once) but sets NPROC before JAX starts;
    # the first use of a name imports it.
    code = ("import os, sys\nimport qsync_jax as qs\nassert 'jax' not in sys.modules\n"
            "print(os.environ['NPROC'])\nqs.evolve\nassert 'jax' in sys.modules\n"
            "assert qs.evolve is sys.modules['qsync_jax._integrate'].evolve\n"
            "from qsync_jax import steady_state, __version__\n")
    env = {k: v for k, v in os.environ.items() if k != "NPROC"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(max(4, len(os.sched_getaffinity(0))))


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'evolv'"):
        qs.evolv


def test_every_public_name_has_a_docstring():
    # The API reference is generated from these docstrings.
    missing = [n for n in qs.__all__ if not (inspect.getdoc(getattr(qs, n)) or "").strip()]
    assert not missing, f"public names without a docstring: {missing}"


def test_version_is_single_sourced_and_matches_the_citation():
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc|\.dev|\.post)?\d*", qs.__version__)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "qsync_jax/__init__.py"
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(rf"^version: {re.escape(qs.__version__)}$", citation, re.MULTILINE)
    assert f"## [{qs.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_license_file_matches_the_declared_license():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "license: Apache-2.0" in (ROOT / "CITATION.cff").read_text()


def test_package_is_typed():
    assert (ROOT / "qsync_jax" / "py.typed").exists()


def test_project_addresses_agree():
    # pyproject.toml's [project.urls] is the one place; what cannot read it must repeat it.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    urls = pyproject["project"]["urls"]
    source = urls["Source"]
    assert urls["Homepage"] == source and urls["Issues"] == f"{source}/issues"
    assert urls["Changelog"] == f"{source}/blob/main/CHANGELOG.md"
    assert urls["Documentation"].endswith("/")  # mkdocs' site_url (docs/_scripts/hooks.py)
    assert f"repository-code: {source}\n" in (ROOT / "CITATION.cff").read_text()
    readme = pyproject["tool"]["hatch"]["metadata"]["hooks"]["fancy-pypi-readme"]
    raw = source.replace("https://github.com/", "https://raw.githubusercontent.com/")
    assert [s["replacement"] for s in readme["substitutions"]] == [
        rf"\1({raw}/main/\2)", rf"]({source}/blob/main/\1)"]
    assert "qsync-jax" not in (ROOT / "mkdocs.yml").read_text()
