"""The API reference, generated at build time: one page per area, every name in ``__all__``.

A name exported by ``qsync_jax/__init__.py`` lands on the page of the module that defines it
(``AREAS`` below gives known modules a title and an order; a new module gets a page of its own,
titled after it), so adding a public name needs no edit here. On a page, each defining module
opens a section: its docstring (the equations and conventions), then its names. ``qsync_jax.plot``
and the ``qsync`` command (its ``--help`` texts) get a page each.
"""

import importlib
import inspect
import pathlib
import re
import subprocess
import sys

import mkdocs_gen_files

import qsync_jax
import qsync_jax.plot

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from griffe_roles import convert  # noqa: E402

# Module (first component below qsync_jax) -> (page file, title, one-line summary); page order.
AREAS = {
    "_gaussian": ("gaussian", "Gaussian states", "States, covariances and information measures."),
    "_models": ("models", "Models", "The model protocol and the built-in models."),
    "_bloch": ("models", "Models", "The model protocol and the built-in models."),
    "_integrate": ("dynamics", "Dynamics", "Evolution, time averages and solver settings."),
    "_solvers": ("dynamics", "Dynamics", "Evolution, time averages and solver settings."),
    "_floquet": ("limit-cycles", "Limit cycles", "Periodic orbits and Floquet analysis."),
    "_wigner": ("wigner", "Truncated Wigner", "Stochastic trajectories beyond the Gaussian "
                "approximation."),
    "_steady_state": ("steady-state", "Steady states", "Lyapunov equations and steady states."),
    "_lyapunov": ("steady-state", "Steady states", "Lyapunov equations and steady states."),
    "_measures": ("measures", "Measures", "Synchronization and phase-locking measures."),
    "_sweep": ("sweeps", "Sweeps and devices", "Batched, sharded parameter sweeps."),
    "_devices": ("sweeps", "Sweeps and devices", "Batched, sharded parameter sweeps."),
    "_optimize": ("design", "Design", "Gradient-based design with Optax."),
    "_results": ("results", "Results and status", "Result types and failure statuses."),
    "_status": ("results", "Results and status", "Result types and failure statuses."),
}


def _module(obj, name: str) -> str:
    """The module defining the public ``name``: its ``__module__``, or for data (e.g. a preset
    dict) the module the package imports it from."""
    module = getattr(obj, "__module__", None)
    if isinstance(module, str) and module.startswith("qsync_jax"):
        return module
    source = inspect.getsource(qsync_jax)
    found = re.search(rf"^\s*from \.([\w.]+) import {name} as {name}$", source, re.MULTILINE)
    return f"qsync_jax.{found.group(1)}" if found else ""


def _area(obj, name: str = "") -> str:
    module = _module(obj, name)
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "qsync_jax" else "_other"


def _order(obj, name: str) -> int:
    areas = list(AREAS)
    return areas.index(_area(obj, name)) if _area(obj, name) in areas else len(areas)


def _source_position(obj) -> tuple[str, int]:
    try:
        return inspect.getsourcefile(obj) or "", inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return "", 0


def _module_section(module: str) -> list[str]:
    """A heading (the docstring's summary line) and the rest of the module's docstring."""
    doc = inspect.getdoc(importlib.import_module(module)) or ""
    summary, _, body = doc.partition("\n")
    if not summary:
        return []
    heading = f"## {convert(summary.strip().rstrip('.'))} {{#{module}}}"  # :mod: links here
    return [heading, "", convert(body.strip()), ""]


def _pages() -> dict[str, tuple[str, str, list[str]]]:
    """page -> (title, summary, names in source order of their modules)."""
    pages: dict[str, tuple[str, str, list[str]]] = {}
    found = {_area(getattr(qsync_jax, n), n) for n in qsync_jax.__all__}
    for area in list(AREAS) + sorted(found - set(AREAS)):
        names = [n for n in qsync_jax.__all__ if _area(getattr(qsync_jax, n), n) == area]
        if not names:
            continue
        stem = area.strip("_").replace("_", "-")
        page, title, summary = AREAS.get(area, (stem, stem.replace("-", " ").capitalize(), ""))
        pages.setdefault(page, (title, summary, []))[2].extend(names)
    for _, _, names in pages.values():
        names.sort(key=lambda n: (_order(getattr(qsync_jax, n), n),
                                  *_source_position(getattr(qsync_jax, n))))
    return pages


def _cli_page() -> str:
    def help_text(*args: str) -> str:
        run = subprocess.run([sys.executable, "-m", "qsync_jax", *args, "--help"],
                             capture_output=True, text=True, check=True)
        return run.stdout.rstrip()

    top = help_text()
    match = re.search(r"\{([\w,-]+)\}", top)
    if not match:
        raise RuntimeError(f"`qsync --help` lists no commands:\n{top}")
    commands = match.group(1).split(",")
    lines = ["# The `qsync` command", "",
             "Generated from `qsync --help`; see the [command-line guide](../guides/cli.md).", "",
             "```text", top, "```", ""]
    for command in commands:
        lines += [f"## `qsync {command}`", "", "```text", help_text(command), "```", ""]
    return "\n".join(lines)


def main() -> None:
    pages = _pages()
    nav = mkdocs_gen_files.Nav()
    index = ["# API reference", "",
             "Every public name, `import qsync_jax as qs`; float64 is assumed throughout "
             "(`jax.config.update(\"jax_enable_x64\", True)`). Conventions: "
             "[Conventions](../conventions.md).", "",
             "| page | names |", "|---|---|"]
    nav["Overview"] = "index.md"
    for page, (title, summary, names) in pages.items():
        body = [f"# {title}", "", summary, ""]
        module = None
        for name in names:
            if _module(getattr(qsync_jax, name), name) != module:
                module = _module(getattr(qsync_jax, name), name)
                body += _module_section(module)
            body += [f"::: qsync_jax.{name}", ""]
        with mkdocs_gen_files.open(f"reference/{page}.md", "w") as f:
            f.write("\n".join(body) + "\n")
        nav[title] = f"{page}.md"
        links = ", ".join(f"[`{n}`][qsync_jax.{n}]" for n in names)
        index.append(f"| [{title}]({page}.md) | {links} |")

    plot_names = sorted(n for n in dir(qsync_jax.plot) if not n.startswith("_")
                        and _area(getattr(qsync_jax.plot, n)) == "plot")
    body = ["# Plotting (`qsync_jax.plot`)", "",
            "Opt-in: `import qsync_jax.plot` (needs the `plot` extra, matplotlib).", ""]
    body += [f"::: qsync_jax.plot.{name}" for name in plot_names]
    with mkdocs_gen_files.open("reference/plot.md", "w") as f:
        f.write("\n".join(body) + "\n")
    nav["Plotting"] = "plot.md"
    index.append("| [Plotting](plot.md) | "
                 + ", ".join(f"[`plot.{n}`][qsync_jax.plot.{n}]" for n in plot_names) + " |")

    with mkdocs_gen_files.open("reference/cli.md", "w") as f:
        f.write(_cli_page())
    nav["Command line"] = "cli.md"
    index.append("| [Command line](cli.md) | `qsync` and its subcommands |")

    with mkdocs_gen_files.open("reference/index.md", "w") as f:
        f.write("\n".join(index) + "\n")
    with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as f:
        f.writelines(nav.build_literate_nav())


main()
