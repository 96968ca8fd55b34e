"""Figure 2 and footnote [36] of Mari et al., PRL 111, 103605 (2013).

Parameters of Fig. 2 with ω₁ = 1 as the unit of frequency: ω₂ = 1.005, γ = 0.005, Δ_j = ω_j,
κ = 0.15, g = 0.005, μ = 0.02, n_b = 0 and E = 48 — the caption's "E = 320" is E/κ (with E = 320
in eq. (9) the mean field is not the limit cycle of radius ≈ 500 of footnote [36];
docs/physics-notes.md). Time averages S̄ = (1/T)∫S dt over the window WINDOW (after the
transient). Every function takes ``(out, quick, progress)`` and returns the written paths;
``quick`` shortens runs and coarsens grids but follows the same code path.
"""

import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import qsync_jax as qs
from qsync_jax import plot as qplot

from ._output import write_data

PAPER = dict(qs.MARI2013_FIG2)  # Fig. 2: E = 48 is the caption's E/κ = 320
WINDOW = (1000.0, 2000.0)
QUICK_WINDOW = (600.0, 1000.0)
TAU = 2 * np.pi  # the paper's time unit τ = 2π/ω₁
MECHANICS = qs.SyncMeasures((1, 3), correlations=True)
MU_VALUES = np.round(np.linspace(0.0, 0.08, 17), 6)
N_B_VALUES = np.array([0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0])
RING_SITES = 20


def _window(quick):
    return QUICK_WINDOW if quick else WINDOW


BATCHED = qs.SolverConfig(solver=qs.Unrolled())
"""Sweeps solve many points at once: Dopri8 with its stages unrolled (same steps, faster)."""


def _mechanical_averages(window, model):
    return qs.time_average(model, MECHANICS, window, config=BATCHED, throw=False)


def _averages_sweep(axis, values, quick, progress):
    fn = jax.tree_util.Partial(_mechanical_averages, jnp.asarray(_window(quick)))
    ds = qs.sweep(fn, qs.optomechanical_pair(**PAPER), {axis: values}, progress=progress)
    return ds.squeeze(drop=True)


def figure_2a(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """S_c(t) and S_p(t) between the mechanical resonators, with their time averages."""
    window = _window(quick)
    model = qs.optomechanical_pair(**PAPER)
    ts = jnp.linspace(TAU, window[1], 600 if quick else 3000)
    traj = qs.evolve(model, ts, save=MECHANICS)
    avg = qs.time_average(model, MECHANICS, window)
    series = {k: np.asarray(v)[:, 0] for k, v in traj.states.items()}
    means = {k: float(np.asarray(v)[0]) for k, v in avg.value.items()}
    with qplot.style():
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        qplot.measures_vs_time(
            ts, {"S_c": series["complete_sync"], "S_p": series["phase_sync"]},
            averages={"S_c": means["complete_sync"], "S_p": means["phase_sync"]},
            time_unit=TAU, time_label="t / τ", ax=ax)
        ax.axvspan(window[0] / TAU, window[1] / TAU, color="0.93", zorder=0,
                   label="averaging window")
        ax.set_ylabel("synchronization")
        ax.set_ylim(0, None)
        ax.legend(loc="lower right", ncol=3)
    data = {"t": ts, **series, "time_averages": means}
    return [qplot.save_figure(fig, out / "mari2013_fig2a.png"),
            write_data(out, "mari2013_fig2a", data, {**PAPER, "window": window})]


def figure_2b(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """Time-averaged S_c, S_p and Gaussian discord vs the mechanical coupling μ."""
    values = MU_VALUES[::3] if quick else MU_VALUES
    ds = _averages_sweep("mu", values, quick, progress)
    with qplot.style():
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        qplot.sweep_lines(ds, "mu", ["complete_sync", "phase_sync", "discord"],
                          labels=["S̄_c", "S̄_p", "D_G"], xlabel="mechanical coupling μ",
                          ylabel="time average", ax=ax)
    params = {**PAPER, "mu": values, "window": _window(quick)}
    return [qplot.save_figure(fig, out / "mari2013_fig2b.png"),
            write_data(out, "mari2013_fig2b", ds, params)]


def figure_2c(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """Time-averaged S_c and S_p vs the mechanical bath occupation n_b."""
    values = N_B_VALUES[::2] if quick else N_B_VALUES
    ds = _averages_sweep("n_th", values, quick, progress)
    with qplot.style():
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        qplot.sweep_lines(ds, "n_th", ["complete_sync", "phase_sync"], labels=["S̄_c", "S̄_p"],
                          xlabel="bath occupation n_b", ylabel="time average", ax=ax)
        ax.set_xscale("symlog", linthresh=1.0)
    params = {**PAPER, "n_th": values, "window": _window(quick)}
    return [qplot.save_figure(fig, out / "mari2013_fig2c.png"),
            write_data(out, "mari2013_fig2c", ds, params)]


def figure_2d(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """Ring of 20 sites (ω = 1): S̄_c and S̄_p between mechanical modes h sites apart."""
    window = _window(quick)
    params = {**PAPER, "omega": 1.0}
    ring = qs.optomechanical_ring(RING_SITES, **params)
    hs = np.arange(1, RING_SITES // 2 + 1)
    measures = qs.SyncMeasures([(1, 2 * int(h) + 1) for h in hs])
    avg = qs.time_average(ring, measures, window)
    s_c, s_p = (np.asarray(avg.value[k]) for k in ("complete_sync", "phase_sync"))
    with qplot.style():
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        ax.plot(hs, s_c, "o-", label="S̄_c")
        ax.plot(hs, s_p, "s-", label="S̄_p")
        ax.set_xlabel("lattice distance h")
        ax.set_ylabel("time-averaged synchronization")
        ax.set_title(f"closed ring of {RING_SITES} sites", loc="left")
        ax.set_ylim(0, None)
        ax.legend()
    data = {"h": hs, "complete_sync": s_c, "phase_sync": s_p}
    return [qplot.save_figure(fig, out / "mari2013_fig2d.png"),
            write_data(out, "mari2013_fig2d", data,
                        {**params, "n_sites": RING_SITES, "window": window})]


def _radius_and_sync(t, state):
    mean = state.mean.reshape(-1, 4)
    return {"radius": jnp.hypot(mean[:, 2], mean[:, 3]),
            "complete_sync": qs.complete_sync(state, 1, 3)}


def footnote_36(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """μ = 0: limit cycles of radius R ≈ 500, and the phase diffusion that lowers S_c to ~R⁻²."""
    params = {**PAPER, "mu": 0.0}
    t_final = 8000.0 if quick else 32000.0
    ts = jnp.geomspace(100.0, t_final, 40 if quick else 80)
    traj = qs.evolve(qs.optomechanical_pair(**params), ts, save=_radius_and_sync)
    radius = np.asarray(traj.states["radius"])
    s_c = np.asarray(traj.states["complete_sync"])
    late = ts > 1000.0
    r_mean = float(radius[late].mean())
    with qplot.style():
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        ax.loglog(ts, s_c, "o-", ms=3, label="S_c(t), linearized (μ = 0)")
        ax.axhline(r_mean**-2, ls="--", color="C2", label=f"R⁻² (R = {r_mean:.0f})")
        ax.axhline(4e-5, ls=":", color="C3", label="footnote [36]'s value 4×10⁻⁵ (500⁻² = 4×10⁻⁶)")
        ax.set_xlabel("t (1/ω₁)")
        ax.set_ylabel("S_c")
        ax.legend()
    data = {"t": ts, "radius": radius, "complete_sync": s_c, "mean_radius_after_t_1000": r_mean,
            "R_minus_2": r_mean**-2}
    return [qplot.save_figure(fig, out / "mari2013_footnote36.png"),
            write_data(out, "mari2013_footnote36", data, params)]


FIGURES = {"2a": figure_2a, "2b": figure_2b, "2c": figure_2c, "2d": figure_2d,
           "36": footnote_36}
