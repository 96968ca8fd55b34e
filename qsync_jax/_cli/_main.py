"""``qsync``'s start-up (every core a device, float64) and its one rule for failures.

Every failure ends in one line on stderr, ``qsync <command>: error: <what>``, and exit code 2:
bad options (argparse), invalid parameters (the model constructors' ``ValueError``), physics
without a result (a failed status), config files, and I/O. An unexpected exception is reported
the same way, with its type.
"""

import json
import sys

from ._parser import EXIT_FAILURE, build_parser


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = " ".join(lines) or type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
        text = f"{text}: {error.filename}"
    if not isinstance(error, (ValueError, OSError)):
        text = f"{type(error).__name__}: {text}"
    return text


def _compile_cache(off: bool) -> None:
    """The persistent compilation cache, unless switched off; a cache that fails is a warning."""
    if off:
        return
    from .._compile_cache import enable_compile_cache

    try:
        enable_compile_cache()
    except OSError as error:
        print(f"qsync: warning: no compilation cache: {_one_line(error)}", file=sys.stderr)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    import jax

    from .._devices import use_cpu_devices

    try:
        use_cpu_devices()  # sweeps run on every core
    except RuntimeError:  # JAX already running (main called from Python): keep its devices
        pass
    jax.config.update("jax_enable_x64", True)
    _compile_cache(args.no_compile_cache)
    from . import _reproduce, _simulate, _sweep

    command = {"reproduce": _reproduce.run, "simulate": _simulate.run, "sweep": _sweep.run}
    try:
        result = command[args.command](args)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # noqa: BLE001 - the command line never shows a traceback
        parser.exit(EXIT_FAILURE, f"qsync {args.command}: error: {_one_line(error)}\n")
    if result is not None:
        print(json.dumps(result, indent=2, allow_nan=False))
    return 0
