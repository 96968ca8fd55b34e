"""The ``qsync`` command line (also ``python -m qsync_jax``).

Subcommands:

- ``qsync reproduce mari2013|bittner2025|all [--figure F] [--out DIR] [--quick]``: paper figures
  (PNG) plus the data behind each (NetCDF/JSON, with every parameter used).
- ``qsync simulate --model pair|ring|correlated-bath [options]``: one model, time-averaged or
  steady-state measures printed as JSON.
- ``qsync sweep CONFIG.toml``: a parameter sweep described in a file, written as NetCDF.

The command enables float64 itself. Bad options end with a one-line message and exit code 2.
"""

import argparse
import json
import sys

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _nonnegative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qsync", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    sim.add_argument("--omega", type=_floats, default=None,
                     help="frequencies, comma separated (pair default 1,1.005; bath 1,1.2)")
    sim.add_argument("--kappa", type=_nonnegative, default=0.15)
    sim.add_argument("--gamma", type=_positive, default=None,
                     help="mechanical (pair/ring, default 0.005) or bath (default 0.5) rate")
    sim.add_argument("--g", type=float, default=None,
                     help="optomechanical (default 0.005) or exchange (default 0) coupling")
    sim.add_argument("--E", type=_nonnegative, default=48.0, help="drive, units of eq. (9)")
    sim.add_argument("--mu", type=float, default=0.02)
    sim.add_argument("--n-th", type=_floats, default=(0.0,), help="bath occupation(s)")
    sim.add_argument("--xi", type=float, default=0.5, help="bath correlation (correlated-bath)")
    sim.add_argument("--n-sites", type=int, default=20, help="ring size")
    sim.add_argument("--t-final", type=_positive, default=2000.0)
    sim.add_argument("--average-from", type=_nonnegative, default=1000.0)
    sim.add_argument("--rtol", type=_positive, default=1e-8)
    sim.add_argument("--atol", type=_positive, default=1e-8)

    swp = sub.add_parser("sweep", help="run a sweep described in a TOML file")
    swp.add_argument("config", help="TOML file (see README, 'Sweeps from the command line')")
    swp.add_argument("--out", default=None, help="NetCDF output (overrides the file's)")
    swp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    import jax

    from ._devices import use_cpu_devices

    try:
        use_cpu_devices()  # sweeps run on every core
    except RuntimeError:  # JAX already running (main called from Python): keep its devices
        pass
    jax.config.update("jax_enable_x64", True)
    from . import _commands

    try:
        result = getattr(_commands, args.command)(args)
    except (ValueError, FileNotFoundError, KeyError) as error:
        parser.exit(EXIT_USAGE, f"qsync {args.command}: error: {error}\n")
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
