"""MkDocs hooks: serve MathJax from the site itself, so pages render math offline.

MathJax 2.7 comes from the ``jupyter-server-mathjax`` package (the ``docs`` extra); it is copied
to ``assets/mathjax/`` after the build. ``javascripts/mathjax-config.js`` configures it.
"""

import pathlib
import shutil

import jupyter_server_mathjax


def on_post_build(config, **kwargs):
    source = pathlib.Path(jupyter_server_mathjax.__file__).parent / "static"
    target = pathlib.Path(config["site_dir"]) / "assets" / "mathjax"
    shutil.copytree(source, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("localization", "*.py"))
