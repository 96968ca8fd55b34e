"""``qsync simulate``: one model, its measures as JSON.

The JSON echoes the model and its parameters; for the optomechanical models (time averages over
the window [``--average-from``, ``--t-final``]) it separates ``window_mean`` (the averages (1/T)∫S
dt of S_c and S_p) from ``end_of_window`` (S_c, S_p, log-negativity and Gaussian discord of the
mechanical modes 1 and 3 in the state at ``--t-final``); for the correlated bath it gives the
steady-state measures (Rényi-2 information measures, as in Bittner & Tyagi). A failed solve or a
model without a steady state is an error, never a number.
"""

import time

import jax
import numpy as np

import qsync_jax as qs

from ._models import DEFAULTS, build


def _mechanical_measures(t, state):
    """S_c (relative, eq. (3)), S_c_absolute (eq. (1), the mean difference included) and S_p
    between the mechanical modes of sites 0 and 1 (modes 1 and 3)."""
    return {"S_c": qs.complete_sync(state, 1, 3),
            "S_c_absolute": qs.complete_sync(state, 1, 3, relative=False),
            "S_p": qs.phase_sync(state, 1, 3)}


@jax.jit  # one compiled program, not one per operation (and one entry in the compilation cache)
def _end_of_window(state):
    return _mechanical_measures(None, state) | {
        "log_negativity": qs.log_negativity(state.cov, a=(1,), b=(3,)),
        "gaussian_discord": qs.gaussian_discord(state.cov, a=(1,), b=(3,)),
    }


def _floats(values: dict) -> dict:
    """Plain floats for JSON; an undefined (NaN) measure becomes null."""
    out = {}
    for name, value in values.items():
        value = float(np.asarray(value))
        out[name] = value if np.isfinite(value) else None
    return out


def parameters(args) -> dict:
    """The constructor arguments of the chosen model: the options given over the defaults."""
    names = ("omega", "kappa", "gamma", "g", "E", "mu", "n_th", "xi", "n_sites")
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    foreign = [n for n in given if n not in DEFAULTS[args.model]]
    if foreign:
        options = ", ".join("--" + n.replace("_", "-") for n in foreign)
        raise ValueError(f"{options} does not apply to --model {args.model}")
    return DEFAULTS[args.model] | given


def run(args):
    """The measures of one model as a JSON-ready dict."""
    started = time.perf_counter()
    params = parameters(args)
    model = build(args.model, params)
    result = {"model": args.model, "parameters": params}
    if args.model == "correlated-bath":
        sol = qs.solve_steady_state(model, throw=False)
        if sol.status != qs.Status.success:
            raise ValueError(f"no steady state: {qs.status_message(sol.status)}")
        cov = sol.state.cov
        result["steady_state"] = _floats({
            "S_c": qs.complete_sync(sol.state, 0, 1),
            "mutual_information_renyi2": qs.mutual_information(cov, kind="renyi2"),
            "gaussian_discord_renyi2": qs.gaussian_discord(cov, kind="renyi2"),
            "log_negativity": qs.log_negativity(cov),
        })
        result["spectral_abscissa"] = float(sol.spectral_abscissa)
    else:
        if not args.average_from < args.t_final:
            raise ValueError("--average-from must be smaller than --t-final")
        window = (args.average_from, args.t_final)
        config = qs.SolverConfig(rtol=args.rtol, atol=args.atol)
        avg = qs.time_average(model, _mechanical_measures, window, config=config, throw=False)
        if avg.status != qs.Status.success:
            raise ValueError(f"the solve failed: {qs.status_message(avg.status)}")
        result |= {
            "window": list(window),
            "solver": {"rtol": args.rtol, "atol": args.atol},
            "window_mean": _floats(avg.value),
            "end_of_window": _floats(_end_of_window(avg.state)),
            "num_steps": int(avg.num_steps),
        }
    result["status"] = "success"
    result["wall_time_s"] = round(time.perf_counter() - started, 3)
    return result
