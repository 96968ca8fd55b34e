"""``qsync sweep CONFIG.toml``: run the sweep a TOML file describes; write it as NetCDF.

In a multi-process job (:mod:`._processes`) every process runs the sweep and only process 0
writes the output; a config file that differs between processes is refused in all of them.
"""

import pathlib

from . import _processes
from ._paths import writable_file


def run(args):
    """Check the options, the whole config and the output path, then sweep and write the
    Dataset (or start the processes that do, with ``--local-processes``)."""
    _processes.check(args)
    path = pathlib.Path(args.config)
    if args.local_processes is not None:
        load_checked(path, args)  # refuse a bad config before starting any process
        _processes.launch(args)
        return None
    _processes.join(args)

    import jax

    import qsync_jax as qs
    from qsync_jax._sweep._processes import same_everywhere, together

    with together():
        plan, target = load_checked(path, args, writer=jax.process_index() == 0)
    same_everywhere({"config file": path.read_text()})
    ds = qs.sweep(plan.fn, plan.model, plan.axes, progress=not args.no_progress, **plan.options)
    if target is not None:
        ds.attrs["config"] = path.read_text()
        ds.to_netcdf(target, engine="h5netcdf")
        print(f"wrote {target}")
    return None


def load_checked(path: pathlib.Path, args, writer: bool = True):
    """The sweep plan of ``path`` and, for the writer, its checked output path; a
    ``ValueError`` for any problem (an unreadable file included)."""
    from ._sweep_config import load

    try:
        plan = load(path)
        return plan, writable_file(args.out or plan.output) if writer else None
    except OSError as error:
        raise ValueError(f"{error.strerror or error}: {error.filename or path}") from None
