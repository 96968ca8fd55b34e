"""Writing a reproduced figure: the PNG and the data behind it, with every parameter used."""

import json
import pathlib

import numpy as np
import xarray as xr


def _plain(value):
    """JSON-ready version of numbers, arrays, tuples and dicts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return np.asarray(value).tolist()
    return value


def write_data(out: pathlib.Path, name: str, data, parameters: dict) -> pathlib.Path:
    """Write ``data`` (an ``xarray.Dataset`` or a dict of arrays) next to the figure ``name``.

    Datasets go to NetCDF with the parameters as attributes (JSON-encoded), everything else to
    JSON under ``{"parameters": ..., "data": ...}``.
    """
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(data, xr.Dataset):
        path = out / f"{name}.nc"
        data = data.assign_attrs(parameters=json.dumps(_plain(parameters)))
        data.to_netcdf(path, engine="h5netcdf")
    else:
        path = out / f"{name}.json"
        path.write_text(json.dumps({"parameters": _plain(parameters), "data": _plain(data)},
                                   indent=1))
    return path
