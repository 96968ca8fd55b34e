"""Outcome of a solve, as a value: an ``eqx.Enumeration`` whose messages say what to do.

Solves never return plausible-looking numbers when they fail. Inside ``jit``/``vmap`` a status is
an array of integer codes; ``Status.success`` compares equal to successful entries:

>>> ok = traj.status == qs.Status.success          # boolean array, one per batch point
>>> qs.status_names(traj.status)   # numpy array of names, e.g. "max_steps_reached"
"""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class _Named(type(eqx.Enumeration)):
    """Status values print their names, e.g. ``Status<max_steps_reached>`` or, batched,
    ``Status<success: 3, diverged: 1>`` (messages: :func:`status_message`)."""

    def __getitem__(cls, item) -> str:
        message = super().__getitem__(item)
        if message in ("traced", "unknown"):
            return message
        names = status_names(item)
        if names.ndim == 0:
            return str(names)
        counts = dict(zip(*np.unique(names, return_counts=True)))
        return ", ".join(f"{name}: {int(count)}" for name, count in counts.items())


class Status(eqx.Enumeration, metaclass=_Named):
    """Outcome of an integration or steady-state solve."""

    success = ""
    max_steps_reached = (
        "The solver reached `max_steps` before the final time. Increase "
        "`SolverConfig(max_steps=...)` (a Floquet average: `max_periods`), loosen "
        "`rtol`/`atol`, or shorten the run."
    )
    diverged = (
        "The state diverged (non-finite or beyond 1e150). The mean field is "
        "probably unstable for these parameters; check the rates, the drive and the couplings."
    )
    dt_min_reached = (
        "The step size collapsed below its minimum: the dynamics is too stiff or blowing up. "
        "Check the parameters, or use a stiff solver in `SolverConfig(solver=...)`."
    )
    no_steady_state = (
        "The drift has an eigenvalue with non-negative real part (an undamped or unstable "
        "mode, e.g. a dark mode at |xi| = 1 on resonance): no unique steady state exists."
    )
    unphysical = (
        "The covariance violates the uncertainty principle (C + iΩ/2 is not positive "
        "semidefinite beyond tolerance): the result is not a physical state."
    )
    solver_failed = "The differential-equation solver failed; see the Diffrax documentation."
    invalid_times = (
        "The time arguments are invalid (checked on traced values, e.g. under `jit`, `vmap` or "
        "in a sweep): save times must be finite, strictly increasing and ≥ t0, a window "
        "(t_a, t_b) must be finite with t0 ≤ t_a < t_b. Fix the times passed."
    )
    linearization_broken = (
        "The fluctuations have grown comparable with the mean field (criterion in "
        "`qsync_jax._checks`): the linearization around the mean field no longer holds, e.g. "
        "for a chaotic or unstable mean field or phase diffusion over a very long run. Choose "
        "parameters with a stable limit cycle, or a shorter run."
    )
    undefined_measure = (
        "A measure is NaN or infinite on a finite state: it is undefined there (e.g. S_p where "
        "a mean field vanishes, as at t = 0 from a zero mean). Save or average it over times "
        "where it is defined, or leave that measure out."
    )
    no_periodic_orbit = (
        "No periodic orbit of the mean field was found near its state after the transient "
        "(Newton shooting did not converge, or no return to the section within the transient's "
        "last `period_max`): the mean field "
        "is unlocked (quasi-periodic), chaotic or not oscillating. Check the parameters, or "
        "increase `t_transient` or `OrbitOptions(period_max=...)`."
    )
    unstable_periodic_orbit = (
        "The periodic orbit found does not attract the trajectory (a Floquet multiplier other "
        "than the neutral one has modulus >= 1, or the trajectory is still far from it): no "
        "locked limit cycle. If the transient is slow, increase `t_transient`."
    )


def from_diffrax(result: dfx.RESULTS) -> Status:
    """Translate a Diffrax ``RESULTS`` value (possibly traced and batched) into a ``Status``."""
    status = Status.where(result == dfx.RESULTS.successful, Status.success, Status.solver_failed)
    for diffrax_item, item in (
        (dfx.RESULTS.max_steps_reached, Status.max_steps_reached),
        (dfx.RESULTS.nonfinite, Status.diverged),
        (dfx.RESULTS.event_occurred, Status.diverged),
        (dfx.RESULTS.dt_min_reached, Status.dt_min_reached),
    ):
        status = Status.where(result == diffrax_item, item, status)
    return status


def mark_nonfinite(status: Status, tree) -> Status:
    """Downgrade a successful ``status`` to ``diverged`` where any leaf of ``tree`` is not finite.

    ``tree`` leaves must carry the same leading batch axes as ``status``.
    """
    ndim = jnp.ndim(status._value)
    finite = jnp.asarray(True)
    for leaf in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array)):
        axes = tuple(range(ndim, jnp.ndim(leaf)))
        finite = finite & jnp.all(jnp.isfinite(leaf), axis=axes)
    return Status.where((status == Status.success) & ~finite, Status.diverged, status)


_NAMES = np.array(list(Status._name_to_item))


def status_names(status: Status) -> np.ndarray:
    """Names of the members of a (batched, concrete) ``status``, e.g. ``"max_steps_reached"``."""
    return _NAMES[np.asarray(status._value)]


def status_message(status: Status) -> str:
    """The message of a scalar, concrete ``status`` ("" for success)."""
    return Status._index_to_message[int(status._value)]
