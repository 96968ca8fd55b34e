"""The options of ``qsync`` and its subcommands.

Physical parameters are parsed as plain numbers and checked by the model constructors (which hold
the constraints); the numerical options (times, tolerances) are checked here.
"""

import argparse
import math
from importlib import metadata

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


def _version() -> str:
    try:
        return metadata.version("qsync_jax")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="qsync", description="Quantum synchronization of Gaussian "
                    "continuous-variable open systems, in JAX.")
    parser.add_argument("--version", action="version", version=f"qsync {_version()}")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not use the persistent compilation cache (also "
                        "QSYNC_JAX_NO_CACHE=1; directory: QSYNC_JAX_CACHE_DIR)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    rep = sub.add_parser("reproduce", help="reproduce the figures of a paper")
    rep.add_argument("paper", choices=["mari2013", "bittner2025", "all"])
    rep.add_argument("--figure", default="all",
                     help="figure id: mari2013 2a|2b|2c|2d|36, bittner2025 1|2|3|4, or all")
    rep.add_argument("--out", default="figures", help="output folder (default: figures)")
    rep.add_argument("--quick", action="store_true",
                     help="coarser grids and shorter runs, same code path")
    rep.add_argument("--no-progress", action="store_true", help="hide progress bars")

    sim = sub.add_parser("simulate", help="simulate one model and print its measures as JSON")
    sim.add_argument("--model", choices=["pair", "ring", "correlated-bath"], default="pair")
    sim.add_argument("--omega", type=_numbers, default=None,
                     help="frequencies, comma separated (pair default 1,1.005; ring 1; bath 1,1.2)")
    sim.add_argument("--kappa", type=_number, default=None, help="optical damping (pair, ring; default 0.15)")
    sim.add_argument("--gamma", type=_number, default=None,
                     help="mechanical (pair/ring, default 0.005) or bath (default 0.5) rate")
    sim.add_argument("--g", type=_number, default=None,
                     help="optomechanical (default 0.005) or exchange (default 0) coupling")
    sim.add_argument("--E", type=_number, default=None, help="drive, units of eq. (9) (default 48)")
    sim.add_argument("--mu", type=_number, default=None, help="mechanical coupling (default 0.02)")
    sim.add_argument("--n-th", type=_numbers, default=None, help="bath occupation(s) (default 0)")
    sim.add_argument("--xi", type=_number, default=None,
                     help="bath correlation (correlated-bath, default 0)")
    sim.add_argument("--n-sites", type=_integer, default=None, help="ring size (default 20)")
    sim.add_argument("--t-final", type=_positive, default=2000.0, help="end of the window")
    sim.add_argument("--average-from", type=_nonnegative, default=1000.0,
                     help="start of the averaging window")
    sim.add_argument("--rtol", type=_positive, default=1e-8)
    sim.add_argument("--atol", type=_positive, default=1e-8)

    swp = sub.add_parser("sweep", help="run a sweep described in a TOML file")
    swp.add_argument("config", help="TOML file (format: qsync_jax/_cli/_sweep_config.py)")
    swp.add_argument("--out", default=None, help="NetCDF output (overrides the file's)")
    swp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser
