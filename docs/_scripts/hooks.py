"""MkDocs hooks: the project's addresses from ``pyproject.toml``; MathJax served from the site.

The site's address (``site_url``) and the repository link (``repo_url``) are the ``Documentation``
and ``Source`` entries of ``[project.urls]`` in ``pyproject.toml``, where they are written.

MathJax is served from the site itself, so pages render math offline. MathJax 2.7 comes from the
``jupyter-server-mathjax`` package (the ``docs`` extra); it is copied to ``assets/mathjax/`` after
the build. ``javascripts/mathjax-config.js`` configures it.
"""

import pathlib
import shutil
import tomllib

import jupyter_server_mathjax

ROOT = pathlib.Path(__file__).resolve().parents[2]


def on_config(config, **kwargs):
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    config["site_url"] = urls["Documentation"]
    config["repo_url"] = urls["Source"]
    return config


def on_post_build(config, **kwargs):
    source = pathlib.Path(jupyter_server_mathjax.__file__).parent / "static"
    target = pathlib.Path(config["site_dir"]) / "assets" / "mathjax"
    shutil.copytree(source, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("localization", "*.py"))
