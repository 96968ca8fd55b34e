"""Results of solves: one protocol — a ``status``, a step count, and the outputs.

Every solve of the library (:func:`qsync_jax.evolve`, :func:`qsync_jax.time_average`,
:func:`qsync_jax.solve_steady_state`, …) returns an :class:`AbstractResult`:

- ``status``: a :class:`qsync_jax.Status` (batched under ``vmap``); failed entries carry NaN
  outputs, never plausible numbers;
- ``num_steps``: solver steps (or iterations) taken, −1 where the notion does not apply;
- ``outputs()``: the pytree of arrays a caller (e.g. :func:`qsync_jax.sweep`) records;
- ``save_times()``: the save times when the outputs carry a leading time axis, else ``None``.

Results print a readable summary (status names, step counts, output shapes), also as HTML in
Jupyter.
"""

import abc
import html

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PyTree

from ._gaussian import GaussianState
from ._status import Status, status_names


def _is_concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))


def _describe_status(status: Status):
    """Status names where concrete (a name, or a list for a batch), else the traced value."""
    if not _is_concrete(status._value):
        return "<traced>"
    names = status_names(status)
    if names.ndim == 0:
        return names.item()
    return ", ".join(f"{name}: {count}" for name, count in sorted(_count(names).items()))


def _count(names) -> dict:
    out: dict = {}
    for name in names.reshape(-1).tolist():
        out[name] = out.get(name, 0) + 1
    return out


def _shapes(tree) -> str:
    leaves = jax.tree_util.tree_leaves_with_path(eqx.filter(tree, eqx.is_array))
    return ", ".join(
        f"{jax.tree_util.keystr(path) or 'value'}{tuple(jnp.shape(x))}" for path, x in leaves
    )


class AbstractResult(eqx.Module):
    """A solve's result: ``status``, ``num_steps`` and ``outputs()`` (module docstring)."""

    status: eqx.AbstractVar[Status]
    num_steps: eqx.AbstractVar[Int[Array, "*batch"]]

    @abc.abstractmethod
    def outputs(self) -> PyTree:
        """The arrays this result delivers (what a sweep records for each point)."""

    @abc.abstractmethod
    def save_times(self) -> Float[Array, " T"] | None:
        """Save times of a leading time axis of ``outputs()``, or ``None`` if there is none."""

    def __repr__(self) -> str:
        num_steps = self.num_steps
        if _is_concrete(num_steps):
            num_steps = jnp.asarray(num_steps).tolist()
        return (
            f"{type(self).__name__}(status={_describe_status(self.status)!r}, "
            f"num_steps={num_steps}, outputs=[{_shapes(self.outputs())}])"
        )

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>"


class Trajectory(AbstractResult):
    """Result of :func:`qsync_jax.evolve`.

    - ``ts``: (T,) save times.
    - ``states``: the model's state type (e.g. a ``GaussianState``) with leading axis T, or —
      when ``save=fn`` was given — the pytree of ``fn(t, state)`` values stacked along axis T.
    - ``status``: a :class:`qsync_jax.Status` (one per trajectory; batched under ``vmap``).
    - ``num_steps``: accepted + rejected solver steps.
    """

    ts: Float[Array, " T"]
    states: PyTree
    status: Status
    num_steps: Int[Array, ""]

    def outputs(self) -> PyTree:
        return self.states

    def save_times(self) -> Float[Array, " T"]:
        return self.ts


class TimeAverage(AbstractResult):
    """Result of :func:`qsync_jax.time_average`.

    - ``value``: the pytree of time averages (1/T)∫S dt over the window.
    - ``state``: the state at the end of the window.
    - ``status``: a :class:`qsync_jax.Status`; ``num_steps``: solver steps over both stages.
    """

    value: PyTree
    state: PyTree
    status: Status
    num_steps: Int[Array, ""]

    def outputs(self) -> PyTree:
        return self.value

    def save_times(self) -> None:
        return None


class SteadyStateSolution(AbstractResult):
    """Result of :func:`qsync_jax.solve_steady_state`.

    - ``state``: the steady ``GaussianState`` (NaN where there is none).
    - ``status``: :attr:`Status.success` or :attr:`Status.no_steady_state`.
    - ``spectral_abscissa``: max Re λ(A), the slowest relaxation rate with its sign flipped
      (negative for a stable model; its inverse magnitude is the relaxation time).
    - ``num_steps``: −1 (a direct solve has no steps).
    """

    state: GaussianState
    status: Status
    spectral_abscissa: Float[Array, ""]
    num_steps: Int[Array, ""] = eqx.field(default_factory=lambda: jnp.asarray(-1))

    def outputs(self) -> PyTree:
        return {"state": self.state, "spectral_abscissa": self.spectral_abscissa}

    def save_times(self) -> None:
        return None
