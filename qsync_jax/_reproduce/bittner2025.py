"""Figures 1–4 of Bittner & Tyagi (2025), computed from the master equation (eqs. (2)–(12)).

Where the paper's printed formulas disagree with its master equation (docs/physics-notes.md),
these figures show what the master equation gives; each figure's data file records the
parameters. Every function takes ``(out, quick, progress)`` and returns the written paths.
"""

import functools
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

import qsync_jax as qs
from qsync_jax import plot as qplot

from ._output import write_data

FIG1 = dict(omega=(1.0, 1.2), gamma=0.5, n_th=(0.0, 0.0), g_values=(0.0, 0.02, 0.04))
FIG2 = dict(omega=(1.0, 1.0), g=0.1, gamma=0.1, n_th=(0.0, 0.0), xi_values=(-1.0, 0.0, 1.0),
            t_final=100.0, seed=2025)
FIG3 = dict(a=dict(omega=(1.0, 1.2), gamma=0.5, g_values=(0.0, 0.01, 0.02, 0.03, 0.04, 0.05)),
            b=dict(omega=(1.0, 1.0), g=0.0, gamma_values=(0.02, 0.05, 0.1, 0.5)),
            t1=20.0, t2=60.0, seed=3)
FIG4 = dict(omega=(1.0, 1.0), g=1.0, gamma=0.1,
            biased=((0.0, 1.0), (0.0, 5.0), (1.0, 5.0)), common=(0.0, 1.0, 5.0))


def _model(**kwargs):
    kwargs.setdefault("g", 0.0)
    kwargs.setdefault("xi", 0.0)
    kwargs.setdefault("n_th", (0.0, 0.0))
    return qs.CorrelatedBathOscillators(**kwargs)


def _save(fig, out, name):
    return qplot.save_figure(fig, out / f"{name}.png")


def figure_1(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """Drift spectrum vs real ξ (a, b), its continuation to complex ξ (c) and a slice (d)."""
    xis = np.linspace(-1.0, 1.0, 201 if quick else 801)
    base = dict(omega=FIG1["omega"], gamma=FIG1["gamma"], n_th=FIG1["n_th"])
    spectra = {g: np.asarray(qs.drift_spectrum(_model(**base, g=g), xis))[:, 2:]
               for g in FIG1["g_values"]}
    g_map = FIG1["g_values"][-1]
    model = _model(**base, g=g_map)
    eps = np.asarray(qs.exceptional_points(model))
    n = 121 if quick else 301
    re, im = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))
    plane = np.asarray(qs.drift_spectrum(model, re + 1j * im))[..., 2:]
    splitting = np.abs(plane[..., 1] - plane[..., 0])
    radius = float(np.abs(eps).max())
    phis = np.linspace(-np.pi, np.pi, 361 if quick else 1441)
    ring = np.asarray(qs.drift_spectrum(model, radius * np.exp(1j * phis)))[:, 2:]
    delta = FIG1["omega"][1] - FIG1["omega"][0]
    xi_crit = delta / FIG1["gamma"]  # γ₁₂ = γ at zero temperature

    with qplot.style():
        fig, axes = plt.subplots(2, 2, figsize=(8.0, 6.4))
        for (g, ev), color in zip(spectra.items(), ("C0", "C1", "C2", "C3")):
            # Each panel sorts its own part, so branches stay continuous through coalescence.
            for k, ls in enumerate(("-", "--")):
                axes[0, 0].plot(xis, np.sort(ev.real, axis=1)[:, k], ls, color=color,
                                label=f"g = {g:g}" if k == 0 else None)
                axes[0, 1].plot(xis, np.sort(ev.imag, axis=1)[:, k], ls, color=color)
        for ax, part in zip(axes[0], ("Re λ (damping)", "Im λ (frequency)")):
            ax.axvline(xi_crit, ls=":", color="0.3")
            ax.axvline(-xi_crit, ls=":", color="0.3")
            ax.set_xlabel("bath correlation ξ")
            ax.set_ylabel(part)
        axes[0, 0].legend(title=f"δ = {delta:g}, γ = {FIG1['gamma']:g}")
        axes[0, 0].set_title("(a)", loc="left")
        axes[0, 1].set_title("(b)", loc="left")
        mesh = axes[1, 0].pcolormesh(re, im, np.log10(splitting + 1e-12), shading="nearest")
        fig.colorbar(mesh, ax=axes[1, 0]).set_label("log10 |λ₊ − λ₋|")
        axes[1, 0].plot(eps.real, eps.imag, "wx", ms=7, mew=2,
                        label="exceptional points (both blocks)")
        axes[1, 0].set_xlabel("Re ξ")
        axes[1, 0].set_ylabel("Im ξ")
        axes[1, 0].legend(loc="lower left")
        axes[1, 0].set_title(f"(c) g = {g_map:g}", loc="left")
        axes[1, 1].plot(phis, ring[:, 0].imag, "-", label="Im λ₋")
        axes[1, 1].plot(phis, ring[:, 1].imag, "--", label="Im λ₊")
        axes[1, 1].set_xlabel(f"φ   (ξ = {radius:.3f}·exp(iφ), through the exceptional points)")
        axes[1, 1].set_ylabel("Im λ")
        axes[1, 1].legend()
        axes[1, 1].set_title("(d)", loc="left")
        fig.tight_layout()
    data = {"xi": xis, "g_values": list(spectra),
            "eigenvalues_real": [ev.real for ev in spectra.values()],
            "eigenvalues_imag": [ev.imag for ev in spectra.values()],
            "exceptional_points_real": eps.real, "exceptional_points_imag": eps.imag,
            "xi_crit_delta_over_gamma12": xi_crit}
    return [_save(fig, out, "bittner2025_fig1"),
            write_data(out, "bittner2025_fig1", data, {**FIG1, "map_g": g_map})]


def figure_2(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """Mean-field trajectories Re⟨a₁⟩, Re⟨a₂⟩ for anti-, un- and fully correlated baths."""
    key = jax.random.PRNGKey(FIG2["seed"])
    re_key, im_key = jax.random.split(key)
    alpha = jax.lax.complex(jax.random.normal(re_key, (2,)), jax.random.normal(im_key, (2,)))
    state0 = qs.coherent(alpha)
    ts = jnp.linspace(0.0, FIG2["t_final"], 1001 if quick else 4001)
    curves = {}
    for xi in FIG2["xi_values"]:
        model = _model(omega=FIG2["omega"], g=FIG2["g"], gamma=FIG2["gamma"], xi=xi,
                       n_th=FIG2["n_th"])
        traj = qs.evolve(model, ts, state0=state0)
        curves[xi] = np.asarray(traj.states.mean)[:, [0, 2]] / np.sqrt(2.0)
    with qplot.style():
        fig, axes = plt.subplots(3, 1, figsize=(6.0, 6.0), sharex=True)
        for ax, (xi, re_a) in zip(axes, curves.items()):
            ax.plot(ts, re_a[:, 0], label="Re⟨a₁⟩")
            ax.plot(ts, re_a[:, 1], "--", label="Re⟨a₂⟩")
            ax.set_ylabel("Re⟨a⟩")
            ax.set_title(f"ξ = {xi:+g}", loc="left")
        axes[0].legend(ncol=2, loc="upper right")
        axes[-1].set_xlabel("t (1/ω)")
        fig.tight_layout()
    data = {"t": ts, "initial_alpha_real": alpha.real, "initial_alpha_imag": alpha.imag,
            **{f"re_a_xi_{xi:+g}": v for xi, v in curves.items()}}
    return [_save(fig, out, "bittner2025_fig2"), write_data(out, "bittner2025_fig2", data, FIG2)]


def _plv(key, t1, t2, model, *, n_samples):
    return qs.phase_locking_value(model, key, t1=t1, t2=t2, n_samples=n_samples)


def figure_3(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """Phase-locking value (eq. 25) vs ξ: (a) δ = 0.2 for several g, (b) δ = 0 for several γ."""
    xis = np.linspace(-1.0, 1.0, 41 if quick else 81)
    n_samples = 200 if quick else 1000
    fn = jax.tree_util.Partial(functools.partial(_plv, n_samples=n_samples),
                               jax.random.PRNGKey(FIG3["seed"]), FIG3["t1"], FIG3["t2"])
    a, b = FIG3["a"], FIG3["b"]
    ds_a = qs.sweep(fn, _model(omega=a["omega"], gamma=a["gamma"]),
                    {"xi": xis, "g": np.asarray(a["g_values"])}, progress=progress)
    ds_b = qs.sweep(fn, _model(omega=b["omega"], g=b["g"], gamma=b["gamma_values"][0]),
                    {"xi": xis, "gamma": np.asarray(b["gamma_values"])}, progress=progress)
    with qplot.style():
        fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.4), sharey=True)
        for g in a["g_values"]:
            qplot.sweep_lines(ds_a.sel(g=g), "xi", "output", labels=[f"g = {g:g}"],
                              markers="o", ax=axes[0])
        for gamma in b["gamma_values"]:
            qplot.sweep_lines(ds_b.sel(gamma=gamma), "xi", "output",
                              labels=[f"γ = {gamma:g}"], markers="o", ax=axes[1])
        for ax, title in zip(axes, ("(a) δ = 0.2, γ = 0.5", "(b) δ = 0, g = 0")):
            ax.set_xlabel("bath correlation ξ")
            ax.set_title(title, loc="left")
            for line in ax.lines:
                line.set_markersize(2)
        axes[0].set_ylabel("PLV")
        fig.tight_layout()
    ds = xr.merge([ds_a.rename(output="plv_a", status="status_a", num_steps="steps_a"),
                   ds_b.rename(output="plv_b", status="status_b", num_steps="steps_b")])
    return [_save(fig, out, "bittner2025_fig3"),
            write_data(out, "bittner2025_fig3", ds, {**FIG3, "n_samples": n_samples})]


class SteadyMeasures(qs.AbstractResult):
    """Steady-state correlations and heat current of one correlated-bath point."""

    mutual_information: jax.Array
    discord: jax.Array
    log_negativity: jax.Array
    heat_current: jax.Array
    status: qs.Status
    num_steps: jax.Array

    def outputs(self) -> dict:
        return {"mutual_information": self.mutual_information, "discord": self.discord,
                "log_negativity": self.log_negativity, "heat_current": self.heat_current}

    def save_times(self) -> None:
        return None


def steady_measures(model) -> SteadyMeasures:
    """Rényi-2 mutual information and discord, log-negativity and exchange current."""
    sol = qs.solve_steady_state(model, throw=False)
    cov = sol.state.cov
    return SteadyMeasures(
        mutual_information=qs.mutual_information(cov, kind="renyi2"),
        discord=qs.gaussian_discord(cov, kind="renyi2"),
        log_negativity=qs.log_negativity(cov),
        heat_current=qs.exchange_current(model, sol.state),
        status=sol.status,
        num_steps=sol.num_steps,
    )


def figure_4(out: pathlib.Path, quick: bool, progress: bool) -> list[pathlib.Path]:
    """Steady-state Rényi-2 mutual information vs ξ, with thermal bias (a) and without (b)."""
    xis = np.linspace(-1.0, 1.0, 101 if quick else 801)
    base = dict(omega=FIG4["omega"], g=FIG4["g"], gamma=FIG4["gamma"])
    runs = {}
    for n1, n2 in FIG4["biased"] + tuple((n, n) for n in FIG4["common"]):
        runs[(n1, n2)] = qs.sweep(steady_measures, _model(**base, n_th=(n1, n2)), {"xi": xis},
                                  progress=progress)
    gamma, g = FIG4["gamma"], FIG4["g"]
    with qplot.style():
        fig, axes = plt.subplots(2, 2, figsize=(8.0, 6.0), sharex=True)
        for (n1, n2), ds in runs.items():
            label = f"n̄ = ({n1:g}, {n2:g})"
            row = axes[0, 0] if n1 != n2 else axes[0, 1]
            qplot.sweep_lines(ds, "xi", "mutual_information", labels=[label], markers="o",
                              ax=row)
            if n1 != n2:
                qplot.sweep_lines(ds, "xi", "discord", labels=[label], markers="o",
                                  ax=axes[1, 0])
                (line,) = axes[1, 1].plot(xis, np.asarray(ds["heat_current"]), label=label)
                flux_34 = 2 * g * gamma / (4 * g**2 + gamma**2) * (n2 - n1)
                axes[1, 1].axhline(flux_34, color=line.get_color(), ls=":", lw=1.0)
        for ax in axes.ravel():
            for line in ax.lines:
                line.set_markersize(0)
        common = np.concatenate([np.asarray(ds["mutual_information"]).ravel()
                                 for (n1, n2), ds in runs.items() if n1 == n2])
        if np.nanmax(np.abs(common)) < 1e-10:
            axes[0, 1].set_ylim(-0.1, 1.0)
            axes[0, 1].text(0.5, 0.5, f"I₂ = 0 for every ξ (max |I₂| = "
                            f"{np.nanmax(np.abs(common)):.0e}):\nthe steady state is the "
                            "product thermal state", transform=axes[0, 1].transAxes,
                            ha="center", fontsize=8)
        for ax in axes[0]:
            ax.set_xlabel("")
        axes[0, 0].set_ylabel("Rényi-2 mutual information I₂")
        axes[0, 0].set_title("(a) thermal bias", loc="left")
        axes[0, 1].set_title("(b) common temperature", loc="left")
        axes[1, 0].set_ylabel("Rényi-2 discord D₂")
        axes[1, 1].set_ylabel("heat current J (quanta / time)")
        axes[1, 1].set_title("dotted: eq. (34)", loc="right", fontsize=8)
        axes[1, 1].legend()
        for ax in axes[1]:
            ax.set_xlabel("bath correlation ξ")
        fig.tight_layout()
    ds = xr.concat([ds.expand_dims(n_th_1=[n1], n_th_2=[n2]).stack(bath=("n_th_1", "n_th_2"))
                    for (n1, n2), ds in runs.items()], dim="bath").reset_index("bath")
    return [_save(fig, out, "bittner2025_fig4"), write_data(out, "bittner2025_fig4", ds, FIG4)]


FIGURES = {"1": figure_1, "2": figure_2, "3": figure_3, "4": figure_4}
