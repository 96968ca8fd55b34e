"""Uniform optomechanical rings: Bloch blocks against the dense covariance, and Fig. 2(d) extended.

Rings of N identical sites with nearest-neighbour mechanical coupling μ (Mari et al., PRL 111,
103605 (2013), Fig. 2(d)): ω = 1, Δ = ω, κ = 0.15, γ = 0.005, g = 0.005, μ = 0.02, n_th = 0 and
E = 48 (= 320 κ; see docs/physics-notes.md for the unit of E). Initial state: zero mean, vacuum.
S̄_c, S̄_p: time averages over (1000, 2000) of the synchronization measures between the mechanical
modes of two sites h apart. Solver: Dopri8, rtol = atol = 1e-8 (unless stated).

Sections of the JSON written to ``benchmarks/results/bench_rings_<host>_<backend>.json``:

- ``scaling``: time per step vs N of the Bloch path (the ``qs.OptomechanicalRing`` that
  ``qs.optomechanical_ring`` returns) and of the dense path (``mean_field_approx=False``, an
  ``OptomechanicalNetwork``) on a short run (t = 0 → ``--t-short``), side by side, with
  least-squares fits of the exponent p in time ∝ N^p; agreement of the two paths (max relative
  difference of the full covariance) at the default and at tight tolerances (1e-12);
- ``full_runs``: the target runs — ``qs.time_average`` to t = 2000 for N = 20, 100, 1000, 10⁴
  (compile time apart from run time, wall and CPU), S̄_c(h), S̄_p(h);
- ``fig2d``: N = 20, h = 1..10: S̄_c, S̄_p, log-negativity and Gaussian discord of the mechanical
  pair, from the Bloch path and from the dense path, with their relative difference;
- ``decay``: S̄_c(h), S̄_p(h) and the connected mechanical correlation c̄(h) of a ring of
  ``--decay-sites`` sites for several μ (n_th = 0) and several n_th (μ = 0.02), batched with
  ``jax.vmap``: correlation length ξ (fit of ln c̄(h)/c̄(0)), the distance h_e at which S̄_c falls
  to S̄_c(1)/e, the slope of 1/S̄_c(h), and the staggered Bloch block at t = 2000 (stability of
  the in-phase ring);
- ``window_dependence``: N = 1000, μ = 0.02, the same over later windows (3000, 4000) and
  (7000, 8000): the near-field slope and h_e are stationary, the far field and ξ are not.

Usage: ``python benchmarks/bench_rings.py [--quick]`` (quick: N ≤ 1000, fewer sweep points).
"""

import argparse
import os
import time
from pathlib import Path

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _common import metadata, write_report

import qsync_jax as qs

jax.config.update("jax_enable_x64", True)

SITE = dict(omega=1.0, kappa=0.15, gamma=0.005, g=0.005, E=48.0, n_th=0.0)
MU = 0.02
WINDOW = (1000.0, 2000.0)
CONFIG = qs.SolverConfig(solver=dfx.Dopri8(), rtol=1e-8, atol=1e-8)
TIGHT = qs.SolverConfig(solver=dfx.Dopri8(), rtol=1e-12, atol=1e-12)
FIG2D_H = tuple(range(1, 11))
LONG_H = (*range(1, 11), 15, 20, 30, 50)


def timed(fn):
    """(result, wall seconds, CPU seconds) of ``fn()``, blocking on the result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = jax.block_until_ready(fn())
    return result, time.perf_counter() - wall, time.process_time() - cpu


def fit_exponent(ns, seconds):
    """Least-squares p of seconds ∝ N^p."""
    return float(np.polyfit(np.log(ns), np.log(seconds), 1)[0])


def max_relative_difference(x, y):
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y)) / np.max(np.abs(y)))


# ----------------------------------------------------------------------------- measures


class MechanicalSync(eqx.Module):
    """``fn(t, state)``: S_c and S_p (and optionally the correlations) of the mechanical modes of
    sites 0 and h, for each h in ``hs`` (static), as (H, 1) arrays (mechanics of site s is mode
    2s + 1). The same for a ``RingState`` (read in O(N) through its ``reduce``) and for the dense
    state of the whole ring."""

    hs: tuple[int, ...] = eqx.field(static=True)
    correlations: bool = eqx.field(static=True)

    def __init__(self, hs, correlations=False):
        self.hs = tuple(int(h) for h in hs)
        self.correlations = bool(correlations)

    def __call__(self, t, state):
        pairs = [(1, 2 * h + 1) for h in self.hs]
        values = qs.SyncMeasures(pairs, correlations=self.correlations)(t, state)
        return {k: v[..., :, None] for k, v in values.items()}


class RingProfile(eqx.Module):
    """``fn(t, ring_state)`` for the decay with distance: S_c(h), S_p(h) of the mechanics and
    their connected correlation c(h) = tr C^{bb}_{0,h} − tr Ĝ^{bb}(0)/N for h in ``(0, *hs)``
    (mechanical 2 × 2 blocks; the q = 0 Bloch mode — the collective phase, which diffuses
    freely — adds the same tr Ĝ(0)/N to every C_{0,h} and is removed)."""

    hs: tuple[int, ...] = eqx.field(static=True)

    def __call__(self, t, state):
        values = MechanicalSync(self.hs)(t, state)
        blocks = state.correlation(np.asarray((0, *self.hs)), modes=(1,))
        zero_mode = state.bloch_blocks(modes=(1,))[..., 0].real  # Ĝ(q = 0), mechanics
        collective = (zero_mode[..., 0, 0] + zero_mode[..., 1, 1]) / state.n_sites
        trace = blocks[..., 0, 0] + blocks[..., 1, 1] - collective
        return {**{k: v[..., 0] for k, v in values.items()}, "correlation": trace}


def as_lists(values):
    return {k: np.asarray(v)[..., 0].tolist() for k, v in values.items()}


# ----------------------------------------------------------------------------- sections


def scaling(bloch_sizes, dense_sizes, t_short):
    """Time per step of both paths on (0, t_short); agreement where both run."""
    ts = jnp.asarray([t_short])
    rows = {"bloch": [], "dense": []}
    finals = {}
    for path, sizes in (("bloch", bloch_sizes), ("dense", dense_sizes)):
        for n in sizes:
            model = qs.optomechanical_ring(n, **SITE, mu=MU, mean_field_approx=path == "bloch")

            def run(model=model):
                return qs.evolve(model, ts, config=CONFIG)

            first, first_wall, _ = timed(run)
            traj, wall, cpu = timed(run)
            steps = int(traj.num_steps)
            row = {"n_sites": n, "num_steps": steps, "compile_s": first_wall - wall,
                   "run_wall_s": wall, "run_cpu_s": cpu, "us_per_step": 1e6 * wall / steps}
            rows[path].append(row)
            if n in dense_sizes:
                finals[path, n] = traj.states
            print(f"  {path:5s} N = {n:6d}: {steps} steps, run {wall:.3f} s "
                  f"({row['us_per_step']:.0f} µs/step), compile {row['compile_s']:.1f} s",
                  flush=True)
    out = {"t_short": t_short, **rows, "agreement": []}
    for path in ("bloch", "dense"):
        # Exponents where the cost is not per-step overhead: N ≥ 1000 (Bloch), N ≥ 20 (dense).
        big = [r for r in rows[path] if r["n_sites"] >= (1000 if path == "bloch" else 20)]
        if len(big) >= 2:
            sizes = [r["n_sites"] for r in big]
            out[f"exponent_{path}"] = {
                "sizes": sizes,
                "wall": fit_exponent(sizes, [r["run_wall_s"] for r in big]),
                "cpu": fit_exponent(sizes, [r["run_cpu_s"] for r in big]),
            }
    for n in dense_sizes:
        if n not in bloch_sizes:
            continue
        row = {"n_sites": n, "config": "Dopri8 1e-8",
               "max_rel_diff_cov": max_relative_difference(finals["bloch", n].cov,
                                                           finals["dense", n].cov)}
        if n <= 40:
            tight = [qs.evolve(qs.optomechanical_ring(n, **SITE, mu=MU, mean_field_approx=b), ts,
                               config=TIGHT).states for b in (True, False)]
            row["max_rel_diff_cov_tight"] = max_relative_difference(tight[0].cov, tight[1].cov)
            row["max_rel_diff_mean_tight"] = max_relative_difference(tight[0].mean, tight[1].mean)
        out["agreement"].append(row)
        print(f"  agreement N = {n}: {row}", flush=True)
    return out


def full_run(n, hs):
    """The target run: N sites, t = 0 → 2000, S̄_c(h), S̄_p(h) over (1000, 2000)."""
    ring = qs.OptomechanicalRing(n, **SITE, mu=MU)
    fn = MechanicalSync(hs)
    # Same shapes and functions, window (1, 2): the compile and almost no integration.
    _, warm_wall, _ = timed(lambda: qs.time_average(ring, fn, (1.0, 2.0), config=CONFIG))
    result, wall, cpu = timed(lambda: qs.time_average(ring, fn, WINDOW, config=CONFIG))
    row = {"n_sites": n, "h": list(hs), "compile_s": warm_wall, "run_wall_s": wall,
           "run_cpu_s": cpu, "num_steps": int(result.num_steps),
           "status": str(qs.status_names(result.status)), **as_lists(result.value)}
    print(f"  N = {n:6d}: run {wall:.1f} s wall / {cpu:.1f} s CPU, compile ≈ {warm_wall:.1f} s, "
          f"{row['num_steps']} steps; S_c(1..3) = {row['complete_sync'][:3]}", flush=True)
    return row


def fig2d():
    """N = 20: both paths, with log-negativity and discord."""
    n = 20
    bloch, wall_b, _ = timed(lambda: qs.time_average(
        qs.optomechanical_ring(n, **SITE, mu=MU), MechanicalSync(FIG2D_H, True), WINDOW,
        config=CONFIG))
    dense, wall_d, _ = timed(lambda: qs.time_average(
        qs.optomechanical_ring(n, **SITE, mu=MU, mean_field_approx=False),
        MechanicalSync(FIG2D_H, True), WINDOW, config=CONFIG))
    out = {"n_sites": n, "h": list(FIG2D_H), "bloch": as_lists(bloch.value),
           "dense": as_lists(dense.value), "wall_s_bloch": wall_b, "wall_s_dense": wall_d,
           "max_rel_diff": {k: max_relative_difference(bloch.value[k], dense.value[k])
                            for k in ("complete_sync", "phase_sync")}}
    print(f"  Fig. 2(d): S_c = {np.round(out['bloch']['complete_sync'], 4).tolist()}\n"
          f"             S_p = {np.round(out['bloch']['phase_sync'], 4).tolist()}\n"
          f"             dense vs Bloch: {out['max_rel_diff']} "
          f"({wall_d:.0f} s vs {wall_b:.0f} s)", flush=True)
    return out


def decay_lengths(hs, s_c, correlation):
    """Length scales of the decay with distance h (``hs`` starts at 1; ``correlation`` has h = 0
    first):

    - ``xi``: correlation length, from the least-squares fit ln(c(h)/c(0)) = a − h/ξ over the
      leading distances where c(h)/c(0) > 0.02, with the rms residual of the fit (NaN if fewer
      than two);
    - ``h_e``: the distance at which S̄_c falls to S̄_c(1)/e (log-interpolated; NaN if never);
    - ``inverse_slope``: b of the least-squares line 1/S̄_c = a + b·h over 2 ≤ h ≤ 10 (the
      synchronization error growing linearly with distance, as for diffusing phases);
    - ``s_c_far``: S̄_c at the largest h, the level of two uncorrelated sites.
    """
    hs, s_c = np.asarray(hs, float), np.asarray(s_c)
    ratio = np.asarray(correlation)[1:] / np.asarray(correlation)[0]
    use = np.cumprod(ratio > 0.02).astype(bool)  # the leading distances above the cutoff
    xi = {"xi": float("nan"), "xi_fit_h_max": float("nan"), "xi_rms_log_residual": float("nan")}
    if use.sum() >= 2:
        fit = np.polyfit(hs[use], np.log(ratio[use]), 1)
        residual = np.log(ratio[use]) - np.polyval(fit, hs[use])
        xi = {"xi": float(-1.0 / fit[0]), "xi_fit_h_max": float(hs[use].max()),
              "xi_rms_log_residual": float(np.sqrt(np.mean(residual**2)))}
    target = np.log(s_c[0]) - 1.0
    below = np.nonzero(np.log(s_c) <= target)[0]
    h_e = float("nan")
    if below.size:
        k = below[0]
        h_e = float(np.interp(target, np.log(s_c[k - 1 : k + 1])[::-1], hs[k - 1 : k + 1][::-1]))
    near = (hs >= 2) & (hs <= 10)
    slope = float(np.polyfit(hs[near], 1.0 / s_c[near], 1)[0])
    return {**xi, "h_e": h_e, "inverse_slope": slope, "s_c_far": float(s_c[-1])}


def decay(n, mus, n_ths):
    """S̄_c(h), S̄_p(h), c̄(h) for several μ (n_th = 0) and n_th (μ = 0.02), vmapped over each."""
    hs = tuple(h for h in LONG_H if h <= n // 2)
    fn = RingProfile(hs)
    out = {"n_sites": n, "h": list(hs)}
    for name, points in (("mu", [dict(mu=m) for m in mus]),
                         ("n_th", [dict(mu=MU, n_th=x) for x in n_ths])):
        rings = [qs.OptomechanicalRing(n, **{**SITE, **p}) for p in points]
        batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *rings)
        result, wall, cpu = timed(lambda: jax.vmap(
            lambda r: qs.time_average(r, fn, WINDOW, config=CONFIG, throw=False))(batch))
        # Trace of the staggered (q = N/2, λ = −2μ) mechanical Bloch block at t = 2000: it grows
        # without bound where the in-phase ring is unstable against anti-phase order.
        final = np.asarray(result.state.bloch_blocks(modes=(1,))[..., -1].real)
        staggered = final[:, 0, 0] + final[:, 1, 1]
        rows = []
        for k, p in enumerate(points):
            values = {key: np.asarray(v)[k] for key, v in result.value.items()}
            status = str(qs.status_names(result.status)[k])
            row = {**p, "status": status, "staggered_trace_t2000": float(staggered[k]),
                   **{key: v.tolist() for key, v in values.items()}}
            if status == "success":
                row["decay"] = decay_lengths(hs, values["complete_sync"], values["correlation"])
            rows.append(row)
            print(f"  {p}: {status}, S_c(1) = {values['complete_sync'][0]:.4f}, "
                  f"tr Ĝ(N/2) = {staggered[k]:.1f}, {row.get('decay')}", flush=True)
        out[f"vs_{name}"] = {"rows": rows, "wall_s": wall, "cpu_s": cpu}
    return out


def window_dependence(n, windows):
    """The same profile at μ = 0.02 averaged over later windows: what is stationary."""
    ring = qs.OptomechanicalRing(n, **SITE, mu=MU)
    fn = RingProfile(LONG_H)
    rows = []
    for window in windows:
        result = qs.time_average(ring, fn, window, config=CONFIG)
        values = {key: np.asarray(v) for key, v in result.value.items()}
        row = {"window": list(window), **{key: v.tolist() for key, v in values.items()},
               "decay": decay_lengths(LONG_H, values["complete_sync"], values["correlation"])}
        rows.append(row)
        print(f"  window {window}: {row['decay']}", flush=True)
    return {"n_sites": n, "h": list(LONG_H), "rows": rows}



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--t-short", type=float, default=20.0)
    parser.add_argument("--decay-sites", type=int, default=500)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    quick = args.quick
    report = {"benchmark": "rings", "metadata": metadata(), "site": SITE, "mu": MU,
              "window": WINDOW, "solver": "Dopri8", "rtol": 1e-8, "atol": 1e-8}
    print(f"devices: {report['metadata']['devices']}  load: {os.getloadavg()[0]:.1f}", flush=True)

    print("scaling (short runs):", flush=True)
    bloch_sizes = [10, 20, 40, 80, 1000, 10_000] + ([] if quick else [100_000])
    report["scaling"] = scaling(bloch_sizes, [10, 20, 40] + ([] if quick else [80]),
                                args.t_short)
    print(f"  exponents: Bloch {report['scaling'].get('exponent_bloch')}, dense "
          f"{report['scaling'].get('exponent_dense')}", flush=True)

    print("full runs (t = 2000):", flush=True)
    sizes = [20, 100, 1000] + ([] if quick else [10_000])
    report["full_runs"] = [full_run(n, FIG2D_H if n == 20 else LONG_H) for n in sizes]
    report["targets"] = {
        f"N={r['n_sites']}": {"run_plus_compile_s": r["run_wall_s"] + r["compile_s"],
                              "limit_s": {1000: 30, 10_000: 300}[r["n_sites"]]}
        for r in report["full_runs"] if r["n_sites"] in (1000, 10_000)
    }
    print(f"  targets: {report['targets']}", flush=True)

    print("Fig. 2(d):", flush=True)
    report["fig2d"] = fig2d()

    print("decay length:", flush=True)
    mus = [0.01, 0.02, 0.04] if quick else [0.005, 0.01, 0.015, 0.02, 0.03, 0.04]
    n_ths = [0.0, 2.0, 10.0] if quick else [0.0, 1.0, 2.0, 5.0, 10.0]
    report["decay"] = decay(args.decay_sites, mus, n_ths)
    windows = [(1000.0, 2000.0), (3000.0, 4000.0)] + ([] if quick else [(7000.0, 8000.0)])
    report["window_dependence"] = window_dependence(1000, windows)

    write_report("bench_rings", report, args.output)


if __name__ == "__main__":
    main()
