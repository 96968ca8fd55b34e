"""The options of ``qsync`` and its subcommands, with their defaults and units.

Physical parameters are parsed as plain numbers and checked by the model constructors (which hold
the constraints); the numerical options (times, tolerances) are checked here. Building the parser
imports no JAX, so ``qsync --help`` answers at once. Help texts are plain text (ASCII): every
option states its default, and every physical quantity its unit.
"""

import argparse
import math

from .. import __version__
from . import _processes
from ._models import DEFAULTS

EXIT_FAILURE = 2


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code
    :data:`EXIT_FAILURE`."""

    def error(self, message):
        self.exit(EXIT_FAILURE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _finite(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _positive(text: str) -> float:
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _nonnegative(text: str) -> float:
    value = _finite(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _numbers(text: str) -> float | list[float]:
    """``1`` → 1.0; ``1,1.005`` → [1.0, 1.005]."""
    values = [_number(v) for v in text.split(",")]
    return values[0] if len(values) == 1 else values


UNITS = ("Units: the models are unit-free. Pick a unit of time; frequencies, rates and couplings "
         "are in its inverse [1/time]. The defaults (Mari et al. 2013, Fig. 2) take the first "
         "mechanical frequency as the unit (omega_1 = 1), so times are in units of 1/omega_1: "
         "t = 2000 is about 318 mechanical periods.")

# simulate's physical parameters: meaning and unit; the defaults come from _models.DEFAULTS.
PARAMETERS = {
    "omega": ("frequencies, comma separated: one per site (pair, correlated-bath) or one for "
              "all", "1/time"),
    "kappa": ("optical (amplitude) damping rate kappa", "1/time"),
    "gamma": ("mechanical damping rate (pair, ring) or bath damping rate (correlated-bath)",
              "1/time"),
    "g": ("optomechanical coupling (pair, ring) or exchange coupling (correlated-bath)",
          "1/time"),
    "E": ("drive amplitude of eq. (9) of Mari et al. (their 'E = 320' is E/kappa)",
          "sqrt(quanta)/time"),
    "mu": ("mechanical coupling between neighbouring sites", "1/time"),
    "n_th": ("thermal occupation of the baths, comma separated: one per site or one for all",
             "quanta"),
    "xi": ("correlation of the two dissipation channels, from -1 to 1", "dimensionless"),
    "n_sites": ("number of sites of the ring (>= 3)", "count"),
}


def _text(value) -> str:
    """A default as it is typed on the command line: ``1,1.005``, ``48``, ``0.005``."""
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return f"{value:g}"


def _model_default(name: str) -> str:
    """``name``'s default for each model it applies to: ``pair, ring; default: 0.15``, or
    ``default: 0.005 (pair, ring); 0.5 (correlated-bath)``."""
    kinds = [k for k in DEFAULTS if name in DEFAULTS[k]]
    by_value: dict[str, list[str]] = {}
    for kind in kinds:
        by_value.setdefault(_text(DEFAULTS[kind][name]), []).append(kind)
    if len(by_value) == 1:
        (value,) = by_value
        applies = "" if len(kinds) == len(DEFAULTS) else ", ".join(kinds) + "; "
        return f"{applies}default: {value}"
    return "default: " + "; ".join(f"{v} ({', '.join(k)})" for v, k in by_value.items())


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="qsync",
                    description="Quantum synchronization of Gaussian continuous-variable open "
                    "systems, in JAX: the papers' figures, one model's measures, parameter "
                    "sweeps.",
                    epilog="Run 'qsync COMMAND --help' for the options of a command. " + UNITS
                    + " Every failure ends in one line on stderr and exit code 2.")
    parser.add_argument("--version", action="version", version=f"qsync {__version__}",
                        help="show the version and exit")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not use the persistent compilation cache (also "
                        "QSYNC_JAX_NO_CACHE=1; directory: QSYNC_JAX_CACHE_DIR) (default: off)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                title="commands")

    rep = sub.add_parser("reproduce", help="reproduce the figures of a paper (PNG) and write "
                         "the data behind them", description="Write the figures of a paper "
                         "as PNG, with the data behind each (every parameter included) as "
                         "NetCDF or JSON next to it.")
    rep.add_argument("paper", choices=["mari2013", "bittner2025", "all"],
                     help="the paper: mari2013, bittner2025 or all")
    rep.add_argument("--figure", default="all",
                     help="figure id: mari2013 2a|2b|2c|2d|36, bittner2025 1|2|3|4, or all "
                     "(default: %(default)s)")
    rep.add_argument("--out", default="figures", help="output folder (default: %(default)s)")
    rep.add_argument("--quick", action="store_true",
                     help="coarser grids and shorter runs, same code path (default: off)")
    rep.add_argument("--no-progress", action="store_true",
                     help="hide the progress bars (default: off)")

    sim = sub.add_parser("simulate", help="simulate one model and print its measures as JSON",
                         description="Simulate one model and print its parameters and measures "
                         "as JSON: time averages over the window [--average-from, --t-final] "
                         "(pair, ring) or the steady state (correlated-bath). Options of "
                         "another model are refused.", epilog=UNITS)
    sim.add_argument("--model", choices=["pair", "ring", "correlated-bath"], default="pair",
                     help="pair: two optomechanical sites (Mari et al.); ring: a uniform ring; "
                     "correlated-bath: two oscillators in correlated baths (Bittner & Tyagi) "
                     "(default: %(default)s)")
    for name, (meaning, units) in PARAMETERS.items():
        parse = {"omega": _numbers, "n_th": _numbers, "n_sites": _integer}.get(name, _number)
        unit = "" if units == "count" else f" [{units}]"
        sim.add_argument("--" + name.replace("_", "-"), dest=name, type=parse, default=None,
                         help=f"{meaning}{unit} ({_model_default(name)})")
    sim.add_argument("--t-final", type=_positive, default=2000.0,
                     help="end of the averaging window [time] (default: %(default)g)")
    sim.add_argument("--average-from", type=_nonnegative, default=1000.0,
                     help="start of the averaging window [time] (default: %(default)g)")
    sim.add_argument("--rtol", type=_positive, default=1e-8,
                     help="relative tolerance of the adaptive solver (default: %(default)g)")
    sim.add_argument("--atol", type=_positive, default=1e-8,
                     help="absolute tolerance of the adaptive solver (default: %(default)g)")

    swp = sub.add_parser("sweep", help="run a parameter sweep described in a TOML file; "
                         "write it as NetCDF", description="Run the parameter sweep a TOML "
                         "file describes (model, measures, axes; the format is in the "
                         "documentation's command-line guide) and write the Dataset as NetCDF. "
                         "The whole file is checked before any work.", epilog=UNITS)
    swp.add_argument("config", help="the TOML file (model, measures, axes)")
    swp.add_argument("--out", default=None, help="NetCDF output file (default: the file's "
                     "'output' key, else the TOML file's name with the suffix .nc)")
    swp.add_argument("--no-progress", action="store_true",
                     help="hide the progress bar (default: off)")
    job = swp.add_argument_group("multi-process job (see the sweeps guide)")
    job.add_argument("--coordinator", type=_processes.address, default=None,
                     help="HOST:PORT of process 0 (with --num-processes, --process-id; under "
                          "srun or mpirun all three may be left out) (default: none)")
    job.add_argument("--num-processes", type=_processes.count, default=None,
                     help="processes in the job (default: none, a single process)")
    job.add_argument("--process-id", type=_processes.index, default=None,
                     help="this process's number, 0 ... N-1 (default: none)")
    job.add_argument("--local-processes", type=_processes.count, default=None,
                     help="start N processes on this host and run the sweep in them "
                          "(default: none)")
    job.add_argument("--devices-per-process", type=_processes.count, default=None,
                     help="CPU devices of each process (default: its cores; with "
                          "--local-processes, the cores shared out)")
    return parser
