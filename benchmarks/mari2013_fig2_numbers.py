"""The numbers behind Fig. 2 and footnote [36] of Mari et al., PRL 111, 103605 (2013).

Parameters of Fig. 2: ω = (1, 1.005), κ = 0.15, γ = 0.005, g = 0.005, Δ_j = ω_j, μ = 0.02,
n_b = 0 and E = 48 (= 320 κ: the caption's "E = 320" is E/κ, see docs/physics-notes.md). Times in
units of 1/ω₁ (the paper plots in τ = 2π/ω₁). Initial state: zero mean, vacuum (thermal for
n_b > 0). Time averages S̄ = (1/T)∫S dt over the window (1000, 2000), i.e. after a transient of
≈ 160 τ, over ≈ 160 τ.

Computed (printed, and written to ``benchmarks/results/mari2013_fig2_numbers.json``):

- ``e_unit``: mechanical mean-field radius R = |(⟨x_b⟩, ⟨p_b⟩)| over t ∈ (1000, 3000) for E = 48
  and E = 320;
- ``fig2a``: S_c(t), S_p(t), log-negativity and discord of the mechanical modes on a grid of the
  window, and their time averages;
- ``fig2b``: time averages vs μ; ``fig2c``: vs n_b;
- ``fig2d``: ring of 20 sites (ω = 1), S̄_c and S̄_p between sites h apart, h = 1..10;
- ``footnote36``: μ = 0, radii and the linearized S_c(t) ∝ 1/t (phase diffusion) vs R⁻².

Usage: ``python benchmarks/mari2013_fig2_numbers.py [--quick]`` (quick: fewer sweep points).
"""

import argparse
import json

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
from _common import RESULTS

import qsync_jax as qs

jax.config.update("jax_enable_x64", True)

PAPER = dict(qs.MARI2013_FIG2)  # Fig. 2: E = 48 is the caption's E/κ = 320
WINDOW = (1000.0, 2000.0)
CONFIG = qs.SolverConfig(solver=dfx.Dopri8(), rtol=1e-8, atol=1e-8)
PAIR = qs.SyncMeasures((1, 3), correlations=True)


def mechanical_radii(t, state):
    """Radius of each mechanical mean field in the (x_b, p_b) plane."""
    mean = state.mean.reshape(-1, 4)
    return jnp.hypot(mean[:, 2], mean[:, 3])


def radius_stats(params, ts):
    """Radii of the classical trajectory alone (no covariance: for E = 320 the linearized
    fluctuations grow without bound on the irregular mean field and overflow)."""
    model = qs.optomechanical_pair(**params)
    sol = dfx.diffeqsolve(
        dfx.ODETerm(lambda t, u, m: m.mean_field(t, u)), dfx.Dopri8(), 0.0, ts[-1], None,
        jnp.zeros(8), args=model, saveat=dfx.SaveAt(ts=ts),
        stepsize_controller=dfx.PIDController(rtol=1e-8, atol=1e-8), max_steps=10**7,
    )
    r = np.asarray(jax.vmap(mechanical_radii)(sol.ts, qs.GaussianState(sol.ys, sol.ys)))
    return {"mean": r.mean(0).tolist(), "min": r.min(0).tolist(), "max": r.max(0).tolist()}


def covariance_growth(params, ts):
    """Largest covariance entry along the full (mean + covariance) solve."""
    traj = qs.evolve(qs.optomechanical_pair(**params), ts, save=lambda t, s: jnp.abs(s.cov).max(),
                     config=CONFIG, throw=False)
    return {"status": str(qs.status_names(traj.status)), "t": ts.tolist(),
            "max_abs_cov": np.asarray(traj.states).tolist()}


def averages(models):
    """Time averages of S_c, S_p, log-negativity and discord (mechanical modes) for a batch."""
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *models)
    result = jax.vmap(lambda m: qs.time_average(m, PAIR, WINDOW, config=CONFIG, throw=False))(batch)
    rows = {name: np.asarray(v)[:, 0].tolist() for name, v in result.value.items()}
    rows["status"] = qs.status_names(result.status).tolist()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    out = {"params": PAPER, "window": WINDOW, "rtol": 1e-8, "atol": 1e-8, "solver": "Dopri8"}

    ts = jnp.linspace(1000.0, 3000.0, 8001)
    out["e_unit"] = {str(E): radius_stats({**PAPER, "E": E}, ts) for E in (48.0, 320.0)}
    growth_ts = jnp.asarray([50.0, 100.0, 200.0, 400.0, 800.0])
    out["e_unit_covariance"] = {str(E): covariance_growth({**PAPER, "E": E}, growth_ts)
                                for E in (48.0, 320.0)}
    print("E unit (mechanical radius over t in [1000, 3000]):", out["e_unit"],
          out["e_unit_covariance"], flush=True)

    ts = jnp.linspace(*WINDOW, 2001)
    traj = qs.evolve(qs.optomechanical_pair(**PAPER), ts, save=PAIR, config=CONFIG)
    series = {name: np.asarray(v)[:, 0] for name, v in traj.states.items()}
    out["fig2a"] = {
        "averages": averages([qs.optomechanical_pair(**PAPER)]),
        "range_in_window": {k: [float(v.min()), float(v.max())] for k, v in series.items()},
        "S_p_le_S_c_in_window": bool(np.all(series["phase_sync"] <= series["complete_sync"])),
    }
    print("Fig. 2(a):", out["fig2a"], flush=True)

    mus = [0.0, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08] if args.quick else [
        0.0, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1]
    out["fig2b"] = {"mu": mus, **averages([qs.optomechanical_pair(**{**PAPER, "mu": m})
                                           for m in mus])}
    print("Fig. 2(b):", out["fig2b"], flush=True)

    nbs = [0.0, 1.0, 5.0, 20.0] if args.quick else [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]
    out["fig2c"] = {"n_b": nbs, **averages([qs.optomechanical_pair(**{**PAPER, "n_th": n})
                                            for n in nbs])}
    print("Fig. 2(c):", out["fig2c"], flush=True)

    ring = qs.optomechanical_ring(20, **{**PAPER, "omega": 1.0})
    hs = list(range(1, 11))
    result = qs.time_average(ring, qs.SyncMeasures([(1, 2 * h + 1) for h in hs]), WINDOW,
                             config=CONFIG)
    out["fig2d"] = {"h": hs, **{k: np.asarray(v).tolist() for k, v in result.value.items()}}
    print("Fig. 2(d):", out["fig2d"], flush=True)

    free = {**PAPER, "mu": 0.0}
    ts = jnp.asarray([250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0])
    traj = qs.evolve(qs.optomechanical_pair(**free), ts, save=qs.SyncMeasures((1, 3)),
                     config=CONFIG)
    s_c = np.asarray(traj.states["complete_sync"])[:, 0]
    radii = radius_stats(free, jnp.linspace(1000.0, 3000.0, 8001))
    r_mean = np.mean(radii["mean"])
    out["footnote36"] = {"radius": radii, "R_minus_2": float(r_mean**-2),
                         "t": ts.tolist(), "S_c_linearized": s_c.tolist(),
                         "t_times_S_c": (np.asarray(ts) * s_c).tolist()}
    print("footnote [36]:", out["footnote36"], flush=True)

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "mari2013_fig2_numbers.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
