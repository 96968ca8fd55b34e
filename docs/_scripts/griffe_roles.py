"""Griffe extension: reST markup in docstrings rendered as Markdown.

The docstrings read well in ``help()`` and use a little reST: roles such as
``:func:`qsync_jax.evolve``` and ``::`` before a literal block. Here a role becomes a link to the
API reference when its target is a public name (``qsync_jax.X`` or ``qsync_jax.plot.X``, members
link to their class) or a module that defines one (its section, whose heading has the module's
name as id: docs/_scripts/gen_api.py), and inline code otherwise; a trailing ``::`` becomes ``:``.
"""

import re

import griffe

import qsync_jax
import qsync_jax.plot

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|obj|exc|const):`~?([^`]+)`")
LITERAL = re.compile(r"\s?::$", re.MULTILINE)
PUBLIC = {f"qsync_jax.{n}" for n in qsync_jax.__all__} | {
    f"qsync_jax.plot.{n}" for n in dir(qsync_jax.plot) if not n.startswith("_")
}
MODULES = {getattr(getattr(qsync_jax, n), "__module__", None) for n in qsync_jax.__all__}


def _target(name: str) -> str | None:
    """The documented public object a role's target refers to, if any."""
    if name in MODULES:
        return name
    name = name.removeprefix("qs.").removeprefix("qsync_jax.")
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        for prefix in ("qsync_jax.", "qsync_jax.plot."):
            candidate = prefix + ".".join(parts[:k])
            if candidate in PUBLIC:
                return candidate
    return None


def _replace(match: re.Match) -> str:
    text = match.group(1)
    target = _target(text)
    shown = text.removeprefix("qsync_jax.")
    return f"[`{shown}`][{target}]" if target else f"`{text}`"


def convert(text: str) -> str:
    return LITERAL.sub(":", ROLE.sub(_replace, text))


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
