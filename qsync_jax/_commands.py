"""What each ``qsync`` subcommand does (argument parsing lives in :mod:`qsync_jax._cli`)."""

import pathlib
import time

import numpy as np


def _mechanical_measures(t, state):
    """S_c, S_p between the mechanical modes of sites 0 and 1 (modes 1 and 3)."""
    from ._measures import complete_sync, phase_sync

    return {"S_c": complete_sync(state, 1, 3), "S_p": phase_sync(state, 1, 3)}


def _pair_correlations(state):
    from ._gaussian import gaussian_discord, log_negativity

    return {
        "log_negativity": log_negativity(state.cov, a=(1,), b=(3,)),
        "gaussian_discord": gaussian_discord(state.cov, a=(1,), b=(3,)),
    }


def simulate(args):
    """Time-averaged S_c, S_p (pair, ring) or steady-state measures (correlated bath) as JSON."""
    import qsync_jax as qs

    started = time.perf_counter()
    if args.model == "correlated-bath":
        n_th = args.n_th if len(args.n_th) == 2 else args.n_th * 2
        model = qs.CorrelatedBathOscillators(
            omega=args.omega or (1.0, 1.2), g=0.0 if args.g is None else args.g,
            gamma=0.5 if args.gamma is None else args.gamma, xi=args.xi, n_th=n_th,
        )
        state = qs.steady_state(model)
        out = {
            "S_c": qs.complete_sync(state, 0, 1),
            "mutual_information_renyi2": qs.mutual_information(state.cov, kind="renyi2"),
            "gaussian_discord_renyi2": qs.gaussian_discord(state.cov, kind="renyi2"),
            "log_negativity": qs.log_negativity(state.cov),
        }
    else:
        if not args.average_from < args.t_final:
            raise ValueError("--average-from must be smaller than --t-final")
        common = dict(
            kappa=args.kappa, gamma=0.005 if args.gamma is None else args.gamma,
            g=0.005 if args.g is None else args.g, E=args.E, mu=args.mu,
            n_th=args.n_th[0] if len(args.n_th) == 1 else args.n_th,
        )
        if args.model == "pair":
            model = qs.optomechanical_pair(omega=args.omega or (1.0, 1.005), **common)
        else:
            model = qs.optomechanical_ring(args.n_sites, omega=(args.omega or (1.0,))[0],
                                           **common)
        config = qs.SolverConfig(rtol=args.rtol, atol=args.atol)
        avg = qs.time_average(model, _mechanical_measures, (args.average_from, args.t_final),
                              config=config, throw=False)
        if avg.status != qs.Status.success:
            raise ValueError(f"the solve failed: {qs.status_message(avg.status)}")
        out = dict(avg.value) | _pair_correlations(avg.state)
        out = {"S_c_mean": out.pop("S_c"), "S_p_mean": out.pop("S_p"), **out}
        out["num_steps"] = avg.num_steps
    result = {k: float(np.asarray(v)) for k, v in out.items()}
    if "num_steps" in result:
        result["num_steps"] = int(result["num_steps"])
    result["model"] = args.model
    result["wall_time_s"] = round(time.perf_counter() - started, 3)
    return result


def reproduce(args):
    """Write the requested figures (PNG + data) and print where they are."""
    from ._reproduce import PAPERS

    papers = list(PAPERS) if args.paper == "all" else [args.paper]
    jobs = []
    for paper in papers:
        figures = PAPERS[paper]
        if args.figure == "all":
            jobs += [(paper, f) for f in figures]
        elif args.figure in figures:
            jobs.append((paper, args.figure))
        else:
            raise ValueError(
                f"--figure {args.figure!r} is not a figure of {paper}; choose from "
                f"{', '.join(figures)} or all"
            )
    out = pathlib.Path(args.out)
    written = []
    for paper, figure in jobs:
        started = time.perf_counter()
        paths = PAPERS[paper][figure](out, args.quick, not args.no_progress)
        print(f"{paper} {figure}: {time.perf_counter() - started:6.1f} s  "
              + "  ".join(str(p) for p in paths), flush=True)
        written += paths
    print(f"{len(written)} files written to {out.resolve()}")
    return None


def sweep(args):
    """Run the sweep described in a TOML file; write the Dataset as NetCDF."""
    from ._sweep_config import run_sweep_config

    path = run_sweep_config(pathlib.Path(args.config), out=args.out,
                            progress=not args.no_progress)
    print(f"wrote {path}")
    return None
