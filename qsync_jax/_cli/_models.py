"""The models ``qsync`` builds, their default parameters, and their constructors' checks."""

import inspect

import qsync_jax as qs

CONSTRUCTORS = {
    "pair": qs.optomechanical_pair,
    "ring": qs.optomechanical_ring,
    "correlated-bath": qs.CorrelatedBathOscillators,
}

_OPTOMECHANICS = dict(kappa=0.15, gamma=0.005, g=0.005, E=48.0, mu=0.02, n_th=0.0)
DEFAULTS = {
    "pair": dict(omega=[1.0, 1.005], **_OPTOMECHANICS),
    "ring": dict(n_sites=20, omega=1.0, **_OPTOMECHANICS),
    "correlated-bath": dict(omega=[1.0, 1.2], g=0.0, gamma=0.5, xi=0.0, n_th=0.0),
}
"""Every parameter's default, per model kind (the constructors' argument names)."""


def parameter_names(kind: str) -> list[str]:
    """The constructor's argument names (``n_sites`` first for a ring)."""
    return [p for p in inspect.signature(CONSTRUCTORS[kind]).parameters if p != "self"]


def build(kind: str, params: dict):
    """``kind``'s model from ``params`` (over the defaults); its constructor checks them, and a
    ``ValueError`` names the argument."""
    params = DEFAULTS[kind] | params
    try:
        if kind == "ring":
            params = dict(params)
            return qs.optomechanical_ring(params.pop("n_sites"), **params)
        return CONSTRUCTORS[kind](**params)
    except (ValueError, TypeError) as error:
        raise ValueError(f"invalid {kind} parameters: {error}") from None
