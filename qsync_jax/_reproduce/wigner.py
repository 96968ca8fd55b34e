"""Truncated Wigner against linearization at the parameters of Mari et al. (2013), Fig. 2(a).

From a coherent state on the locked limit cycle (the classical mean at ``T_LOCK``, vacuum
fluctuations), the same state is propagated
by the linearized theory (``qs.evolve``) and sampled by truncated Wigner
(``qs.wigner_ensemble``) over a window; S_c(t), S_p(t) of the mechanical modes are compared, at
μ = 0.02, at μ = 0 (no locking: phase diffusion) and at smaller amplitudes — g → λg, E → E/λ
leaves the classical dynamics and the linearized covariance unchanged while every amplitude
shrinks by λ (R ≈ 500/λ), so the quantum noise grows relative to the limit cycle. See
docs/truncated-wigner.md. Every function takes ``(out, quick, progress)`` and returns the
written paths.
"""

import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import qsync_jax as qs
from qsync_jax import plot as qplot

from ._output import write_data

PAPER = dict(qs.MARI2013_FIG2)
T_LOCK = 1000.0
MECHANICS = (1, 3)
SCALES = (1.0, 10.0, 30.0, 100.0)
BINS = 48


def locked_mean(params):
    """Classical mean at ``T_LOCK`` of ``optomechanical_pair(**params)`` from the vacuum.

    The scaled models (g → λg, E → E/λ) take this mean divided by λ, exactly (the mean-field
    equations are invariant under α, β → α/λ, β/λ): from the vacuum at t = 0 the linearized
    covariance of a small-amplitude model grows past the linearization regime long before
    ``T_LOCK`` (λ ≥ 30 is reported ``linearization_broken``), while the mean field is unaffected.
    """
    model = qs.optomechanical_pair(**params)
    return qs.evolve(model, jnp.array([T_LOCK])).states.mean[0]


def _case(params, locked, window, n, dt, quick):
    """Linearized and truncated-Wigner S_c, S_p over ``window`` from the coherent state at
    mean ``locked``; a linearized solve that leaves its regime is kept as NaN with its status."""
    model = qs.optomechanical_pair(**params)
    state0 = qs.GaussianState(mean=locked, cov=model.initial_state().cov)  # coherent
    ts = T_LOCK + jnp.linspace(0.0, window, 41 if quick else 101)
    solved = qs.evolve(model, ts, state0=state0, t0=T_LOCK, throw=False)
    if bool(solved.status == qs.Status.success):
        linearized = {"S_c": np.asarray(qs.complete_sync(solved.states, *MECHANICS)),
                      "S_p": np.asarray(qs.phase_sync(solved.states, *MECHANICS))}
    else:  # out of its regime: no linearized curve, the status says why
        linearized = {"S_c": np.full(len(ts), np.nan), "S_p": np.full(len(ts), np.nan)}
    ens = qs.wigner_ensemble(model, ts, n, jax.random.key(0), state0=state0, t0=T_LOCK, dt=dt,
                             save=qs.WignerSave(MECHANICS, phase_bins=BINS), throw=False)
    m, se = ens.measures, ens.measures_stderr
    return {
        "t": np.asarray(ts),
        "radius": float(np.hypot(*np.asarray(state0.mean[2:4]))),
        "status": str(qs.status_names(ens.status)),
        "linearized_status": str(qs.status_names(solved.status)),
        "linearized": linearized,
        "wigner": {k: np.asarray(m[name][:, 0]) for k, name in
                   (("S_c", "complete_sync"), ("S_p", "phase_sync"),
                    ("S_c_absolute", "complete_sync_absolute"),
                    ("phase_locking", "phase_locking"))},
        "wigner_stderr": {k: np.asarray(se[name][:, 0]) for k, name in
                          (("S_c", "complete_sync"), ("S_p", "phase_sync"),
                           ("S_c_absolute", "complete_sync_absolute"))},
        "phase_histogram": np.asarray(m["phase_histogram"][-1, 0]),
        "phase_histogram_stderr": np.asarray(se["phase_histogram"][-1, 0]),
    }


def study(quick: bool) -> dict:
    """Every case of the comparison (module docstring) as plain arrays."""
    n, window, dt = (512, 50.0, 0.01) if quick else (2048, 200.0, 0.01)
    unlocked = {**PAPER, "mu": 0.0}
    locked = locked_mean(PAPER)
    cases = {"mu=0.02": _case(PAPER, locked, window, n, dt, quick),
             "mu=0": _case(unlocked, locked_mean(unlocked), window, n, dt, quick)}
    for lam in SCALES[1:]:
        params = {**PAPER, "g": PAPER["g"] * lam, "E": PAPER["E"] / lam}
        cases[f"lambda={lam:g}"] = _case(params, locked / lam, window, n, dt, quick)
    return {"cases": cases, "n_trajectories": n, "window": window, "dt": dt}


def _late_average(c, source, key):
    """Average over the second half of the window (and its standard error, for TW)."""
    half = len(c["t"]) // 2
    value = float(np.mean(c[source][key][half:]))
    if source == "linearized":
        return value, 0.0
    return value, float(np.mean(c["wigner_stderr"][key][half:]))  # correlated in time: bound


def plot(cases: dict):
    """The figure of :func:`figure_tw` from the data of :func:`study`."""
    with qplot.style():
        fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
        for ax, name in zip(axes[:2], ("mu=0.02", "mu=0")):
            c = cases[name]
            t = np.asarray(c["t"]) - T_LOCK
            for key, color in (("S_c", "C0"), ("S_p", "C2")):
                ax.plot(t, c["linearized"][key], color=color, label=f"{key} linearized")
                step = max(1, len(t) // 12)
                ax.errorbar(t[::step], np.asarray(c["wigner"][key])[::step],
                            2 * np.asarray(c["wigner_stderr"][key])[::step], fmt="o", ms=3,
                            color=color, label=f"{key} truncated Wigner (±2σ)")
            ax.set_title(f"{name.replace('mu', 'μ')}, R ≈ {c['radius']:.0f}")
            ax.set_xlabel(f"t − {T_LOCK:g}")
            ax.set_ylim(0, None)
        axes[0].legend(loc="upper right", fontsize=7)
        ax = axes[2]
        scaled = [cases["mu=0.02"]] + [cases[f"lambda={lam:g}"] for lam in SCALES[1:]]
        radii = [c["radius"] for c in scaled]
        for key, color in (("S_c", "C0"), ("S_p", "C2")):
            ax.plot(radii, [_late_average(c, "linearized", key)[0] for c in scaled], color=color,
                    label=f"{key} linearized")
            tw = np.array([_late_average(c, "wigner", key) for c in scaled])
            ax.errorbar(radii, tw[:, 0], 2 * tw[:, 1], fmt="o", color=color,
                        label=f"{key} truncated Wigner")
        ax.set_xscale("log")
        ax.set_xlabel("limit-cycle radius R (g → λg, E → E/λ)")
        ax.set_title("late-window average, μ = 0.02")
        ax.legend(fontsize=7)
        ax = axes[3]
        edges = np.linspace(-np.pi, np.pi, BINS + 1)
        centers = 0.5 * (edges[1:] + edges[:-1])
        for name, c in cases.items():
            ax.plot(centers, c["phase_histogram"], label=f"{name} (R ≈ {c['radius']:.0f})")
        ax.set_xlabel("relative phase Δφ at the end of the window")
        ax.set_ylabel("probability density")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        fig.tight_layout()
    return fig


def figure_tw(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """TW vs linearized S_c(t), S_p(t); amplitude dependence; relative-phase distributions."""
    data = study(quick)
    parameters = {**PAPER, "t_lock": T_LOCK, "scales": SCALES,
                  **{k: data[k] for k in ("n_trajectories", "window", "dt")}}
    return [qplot.save_figure(plot(data["cases"]), out / "wigner_vs_linearized.png"),
            write_data(out, "wigner_vs_linearized", data["cases"], parameters)]


FIGURES = {"tw": figure_tw}
