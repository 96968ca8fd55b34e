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


def _window_label(window):
    """Every time average is quoted with its window: S̄ keeps drifting (phase diffusion)."""
    return f"S̄ = (1/T)∫S dt over t ∈ [{window[0]:g}, {window[1]:g}] (1/ω₁)"


def _mechanical_averages(window, model):
    return qs.time_average(model, MECHANICS, window, throw=False)


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
        ax.set_title(_window_label(window), loc="left")
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
        ax.set_title(_window_label(_window(quick)), loc="left")
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
        ax.set_title(_window_label(_window(quick)), loc="left")
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
        ax.set_title(f"closed ring of {RING_SITES} sites; {_window_label(window)}", loc="left")
        ax.set_ylim(0, None)
        ax.legend()
    data = {"h": hs, "complete_sync": s_c, "phase_sync": s_p}
    return [qplot.save_figure(fig, out / "mari2013_fig2d.png"),
            write_data(out, "mari2013_fig2d", data,
                        {**params, "n_sites": RING_SITES, "window": window})]


def _radius_and_sync(t, state):
    mean = state.mean.reshape(-1, 4)
    return {"radius": jnp.hypot(mean[:, 2], mean[:, 3]),
            "complete_sync": qs.complete_sync(state, 1, 3),
            "absolute_sync": qs.complete_sync(state, 1, 3, relative=False)}


def footnote_36(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """μ = 0: limit cycles of radius R ≈ 500, and the phase diffusion that lowers S_c to ~R⁻²."""
    params = {**PAPER, "mu": 0.0}
    t_final = 8000.0 if quick else 32000.0
    ts = jnp.geomspace(100.0, t_final, 40 if quick else 80)
    traj = qs.evolve(qs.optomechanical_pair(**params), ts, save=_radius_and_sync)
    radius = np.asarray(traj.states["radius"])
    s_c = np.asarray(traj.states["complete_sync"])
    s_abs = np.asarray(traj.states["absolute_sync"])
    late = ts > 1000.0
    r_mean = float(radius[late].mean())
    # Time averages of the absolute S_c (eq. (1), means included): the footnote's quantity.
    absolute = qs.SyncMeasures((1, 3), relative=False)
    edges = [1000.0, 2000.0, 4000.0] if quick else [1000.0, 2000.0, 4000.0, 8000.0, 16000.0]
    model = qs.optomechanical_pair(**params)
    abs_averages = [float(qs.time_average(model, absolute, w).value["complete_sync"][0])
                    for w in zip(edges[:-1], edges[1:])]
    with qplot.style():
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        ax.loglog(ts, s_c, "o-", ms=3, label="relative S_c(t) (eq. (3), fluctuations)")
        ax.loglog(ts, s_abs, "-", lw=0.6, color="C1", label="absolute S_c(t) (eq. (1), means)")
        for (a, b), v in zip(zip(edges[:-1], edges[1:]), abs_averages):
            ax.hlines(v, a, b, color="C1", lw=2.5)
        ax.axhline(r_mean**-2, ls="--", color="C2", label=f"R⁻² (R = {r_mean:.0f})")
        ax.axhline(4e-5, ls=":", color="C3", label="footnote [36]'s value 4×10⁻⁵ (500⁻² = 4×10⁻⁶)")
        ax.set_xlabel("t (1/ω₁)")
        ax.set_ylabel("S_c")
        ax.set_title("bars: absolute S̄_c over windows " + ", ".join(
            f"[{a:g}, {b:g}]" for a, b in zip(edges[:-1], edges[1:])), loc="left",
            fontsize="small")
        ax.legend(fontsize="small")
    data = {"t": ts, "radius": radius, "complete_sync": s_c, "absolute_sync": s_abs,
            "absolute_sync_window_averages": {f"{a:g}-{b:g}": v for (a, b), v in
                                              zip(zip(edges[:-1], edges[1:]), abs_averages)},
            "mean_radius_after_t_1000": r_mean, "R_minus_2": r_mean**-2}
    return [qplot.save_figure(fig, out / "mari2013_footnote36.png"),
            write_data(out, "mari2013_footnote36", data, params)]


def _tangent_leakage(model, orbit, i, j):
    """Variances of the synchronization errors carried by the phase direction: B_c(s), B_p(s)
    such that the phase variance σ_θ² adds σ_θ² B(s) to ⟨q₋² + p₋²⟩ and ⟨p'₋²⟩ (the covariance
    gains σ_θ² f fᵀ along the orbit), at the orbit's quadrature nodes."""
    u = jax.vmap(lambda x: model.mean_field(0.0, x))(orbit.node_points)
    # 1/S_c and 1/(2S_p) are linear in C: B = (value at ½I + f fᵀ) − (value at ½I), both states
    # physical (f fᵀ alone is not a covariance, and the measures refuse it)
    vacuum = jnp.broadcast_to(0.5 * jnp.eye(u.shape[-1]), u.shape + u.shape[-1:])
    states = [qs.GaussianState(orbit.node_points, vacuum + extra)
              for extra in (u[:, :, None] * u[:, None, :], 0.0)]
    (c_tangent, p_tangent), (c_vacuum, p_vacuum) = (
        (1.0 / qs.complete_sync(s, i, j), 0.5 / qs.phase_sync(s, i, j)) for s in states)
    return c_tangent - c_vacuum, p_tangent - p_vacuum


def _phase_variance_rate(orbit):
    """d Var θ / dt = Zᵀ Q Z / T (θ the phase in units of time)."""
    z = orbit.phase_response
    return float(z @ orbit.noise @ z / orbit.period)


def _period_average(orbit, values):
    return float(jnp.sum(orbit.node_weights * values) / orbit.period)


def drift_asymptotics(model, i=1, j=3):
    """Predicted asymptotics of S_c(t), S_p(t) from the orbit's phase diffusion (Floquet data).

    Along the orbit the covariance gains κt·f fᵀ (κ = Zᵀ Q Z / T); hence ⟨q₋² + p₋²⟩ → κt B_c(s)
    and S_c → ⟨1/B_c⟩/(κt), S_p → ⟨1/(2B_p)⟩/(κt) (period averages ⟨·⟩); the drift of a
    window average is dS̄_c/dt = −κ ⟨B_c S_c²⟩ (S_c at the nodes of the current period).
    """
    orbit = qs.periodic_orbit(model)
    kappa = _phase_variance_rate(orbit)
    b_c, b_p = _tangent_leakage(model, orbit, i, j)
    return orbit, kappa, b_c, b_p, {
        "period": float(orbit.period),
        "phase_variance_rate": kappa,
        "phase_diffusion_D_phi": float(orbit.phase_diffusion),
        "S_c_times_t_limit": _period_average(orbit, 1.0 / b_c) / kappa,
        "S_p_times_t_limit": _period_average(orbit, 0.5 / b_p) / kappa,
        "min_leakage_c": float(b_c.min()), "min_leakage_p": float(b_p.min()),
    }


def _node_states(orbit, t):
    """Start t_k of the period containing t and the states at its nodes (C_k by C ↦ MCMᵀ + Q)."""
    k = int((t - float(orbit.t_anchor)) // float(orbit.period))
    M, Q = np.asarray(orbit.monodromy), np.asarray(orbit.noise)
    C = np.asarray(orbit.state.cov)
    for _ in range(k):
        C = M @ C @ M.T + Q
    props = np.asarray(orbit.node_propagators)
    covs = np.einsum("qij,jk,qlk->qil", props, C, props) + np.asarray(orbit.node_noise)
    t_k = float(orbit.t_anchor) + k * float(orbit.period)
    return t_k, qs.GaussianState(orbit.node_points, jnp.asarray(covs))


def _predicted_laws(orbit, kappa, b_c, b_p, t_ref, ts, i=1, j=3):
    """S_c, S_p predicted at times ``ts`` from the state at t_ref and the phase diffusion alone:
    ⟨q₋² + p₋²⟩(s, t) = A_c(s) + κ B_c(s)(t − t_ref), S̄_c = ⟨1/(A_c + κB_c(t − t_ref))⟩ (and
    likewise S_p with ½/…), plus the drift −κ⟨B_c S_c²⟩ at t_ref."""
    t_k, states = _node_states(orbit, t_ref)
    a_c = 1.0 / qs.complete_sync(states, i, j)
    a_p = 0.5 / qs.phase_sync(states, i, j)
    dt = jnp.asarray(ts)[:, None] - t_k
    s_c = jnp.sum(orbit.node_weights / (a_c + kappa * b_c * dt), axis=1) / orbit.period
    s_p = jnp.sum(orbit.node_weights * 0.5 / (a_p + kappa * b_p * dt), axis=1) / orbit.period
    drift = -kappa * _period_average(orbit, b_c / a_c**2)
    return np.asarray(s_c), np.asarray(s_p), drift


def figure_drift(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """S̄_c, S̄_p over consecutive windows up to t ≈ 10⁵ (Floquet window averages), with the
    asymptotics predicted from the phase diffusion of the locked orbit."""
    model = qs.optomechanical_pair(**PAPER)
    measures = qs.SyncMeasures((1, 3))
    edges = np.geomspace(1000.0, 2e4 if quick else 1e5, 7 if quick else 21)
    windows = list(zip(edges[:-1], edges[1:]))
    values = {"complete_sync": [], "phase_sync": []}
    for window in windows:
        avg = qs.time_average(model, measures, window, method="floquet")
        for key in values:
            values[key].append(float(avg.value[key][0]))
    orbit, kappa, b_c, b_p, asym = drift_asymptotics(model)
    mid = np.sqrt(edges[:-1] * edges[1:])
    fine = np.geomspace(edges[0], edges[-1], 200)
    first = qs.time_average(model, measures, (1000.0, 2000.0), method="floquet").value
    second = qs.time_average(model, measures, (2000.0, 3000.0), method="floquet").value
    asym["measured_drift_S_c_1500_to_2500"] = float(
        (second["complete_sync"][0] - first["complete_sync"][0]) / 1000.0)
    law_c, law_p, drift = _predicted_laws(orbit, kappa, b_c, b_p, 1000.0, fine)
    asym["predicted_drift_S_c_at_2000"] = _predicted_laws(orbit, kappa, b_c, b_p, 2000.0,
                                                          fine[:1])[2]
    with qplot.style():
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        ax.loglog(mid, values["complete_sync"], "o", label="S̄_c over [t_k, t_k+1]")
        ax.loglog(mid, values["phase_sync"], "s", label="S̄_p over [t_k, t_k+1]")
        ax.loglog(fine, law_c, "-", color="C0", lw=0.8,
                  label="⟨1/(A_c + κB_c t)⟩ from t = 1000 (phase diffusion)")
        ax.loglog(fine, law_p, "-", color="C1", lw=0.8, label="same for S_p")
        ax.loglog(fine, asym["S_c_times_t_limit"] / fine, "--", color="C0",
                  label=f"asymptote {asym['S_c_times_t_limit']:.0f}/t")
        ax.loglog(fine, asym["S_p_times_t_limit"] / fine, ":", color="C1",
                  label=f"asymptote {asym['S_p_times_t_limit']:.0f}/t")
        ax.set_ylim(0.03, 0.4)
        ax.set_xlabel("window centre t (1/ω₁), windows [t_k, t_k+1] geometric")
        ax.set_ylabel("window average")
        ax.set_title(f"Fig. 2(a) parameters; windows {edges[0]:g} … {edges[-1]:g}", loc="left")
        ax.legend(fontsize="small")
    data = {"windows": windows, **values, "asymptotics": asym, "t_law": fine,
            "S_c_law_from_t_1000": law_c, "S_p_law_from_t_1000": law_p}
    return [qplot.save_figure(fig, out / "mari2013_drift.png"),
            write_data(out, "mari2013_drift", data, PAPER)]


FIGURES = {"2a": figure_2a, "2b": figure_2b, "2c": figure_2c, "2d": figure_2d,
           "36": footnote_36, "drift": figure_drift}
