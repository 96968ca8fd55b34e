"""The models ``qsync`` builds, their default parameters, and their constructors' checks.

Importing this module imports no JAX (``qsync --help`` shows the defaults): the constructors are
looked up on :mod:`qsync_jax` when a model is built.
"""

import inspect

import qsync_jax as qs

CONSTRUCTORS = {
    "pair": "optomechanical_pair",
    "ring": "optomechanical_ring",
    "correlated-bath": "CorrelatedBathOscillators",
}
"""Model kind → the name of its constructor in :mod:`qsync_jax`."""

DEFAULTS = {
    "pair": {**qs.MARI2013_FIG2, "omega": list(qs.MARI2013_FIG2["omega"])},
    "ring": {**qs.MARI2013_FIG2, "n_sites": 20, "omega": 1.0},
    "correlated-bath": dict(omega=[1.0, 1.2], g=0.0, gamma=0.5, xi=0.0, n_th=0.0),
}
"""Every parameter's default, per model kind (the constructors' argument names)."""


def constructor(kind: str):
    """The constructor of ``kind`` (imports the library)."""
    return getattr(qs, CONSTRUCTORS[kind])


def parameter_names(kind: str) -> list[str]:
    """The constructor's argument names (``n_sites`` first for a ring)."""
    return [p for p in inspect.signature(constructor(kind)).parameters if p != "self"]


def build(kind: str, params: dict):
    """``kind``'s model from ``params`` (over the defaults); its constructor checks them, and a
    ``ValueError`` names the argument."""
    params = DEFAULTS[kind] | params
    try:
        if kind == "ring":
            params = dict(params)
            return qs.optomechanical_ring(params.pop("n_sites"), **params)
        return constructor(kind)(**params)
    except (ValueError, TypeError) as error:
        raise ValueError(f"invalid {kind} parameters: {error}") from None
