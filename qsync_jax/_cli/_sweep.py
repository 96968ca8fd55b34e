"""``qsync sweep CONFIG.toml``: run the sweep a TOML file describes; write it as NetCDF."""

import pathlib

from ._paths import writable_file
from ._sweep_config import load


def run(args):
    """Check the whole config and the output path, then sweep and write the Dataset."""
    import qsync_jax as qs

    path = pathlib.Path(args.config)
    plan = load(path)
    target = writable_file(args.out or plan.output)
    ds = qs.sweep(plan.fn, plan.model, plan.axes, progress=not args.no_progress, **plan.options)
    ds.attrs["config"] = path.read_text()
    ds.to_netcdf(target, engine="h5netcdf")
    print(f"wrote {target}")
    return None
