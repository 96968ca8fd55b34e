"""qsync_jax: quantum synchronization of Gaussian continuous-variable open systems, in JAX.

Conventions (ħ = 1, xpxp ordering, vacuum covariance ½·I) are defined in
:mod:`qsync_jax._gaussian`. Importing this package is quick and imports no JAX: each public name
is imported from its module on first use (``qs.evolve``), so that ``qsync --help`` answers at
once. It changes no JAX setting: enable float64 yourself with
``jax.config.update("jax_enable_x64", True)``. Its one side effect: when unset, the environment
variable ``NPROC`` (the size of XLA's CPU thread pool, read when JAX starts) is set to
``max(cores, 4)``, so that jaxlib's batched linear algebra cannot deadlock on small machines
(:mod:`qsync_jax._pool`).
"""

import typing

from . import _pool  # noqa: F401 - sizes XLA's CPU thread pool (NPROC) before JAX starts

__version__ = "0.1.0"

# The public API: every `from ._x import Name as Name` in this block is public (in `__all__`),
# imported on first use (`_exports` reads the block) and documented in the API reference.
if typing.TYPE_CHECKING:
    from ._compile_cache import enable_compile_cache as enable_compile_cache
    from ._devices import use_cpu_devices as use_cpu_devices
    from ._floquet import OrbitOptions as OrbitOptions
    from ._floquet import PeriodicOrbit as PeriodicOrbit
    from ._floquet import periodic_orbit as periodic_orbit
    from ._gaussian import GaussianState as GaussianState
    from ._gaussian import coherent as coherent
    from ._gaussian import from_thewalrus as from_thewalrus
    from ._gaussian import gaussian_discord as gaussian_discord
    from ._gaussian import is_physical as is_physical
    from ._gaussian import log_negativity as log_negativity
    from ._gaussian import mutual_information as mutual_information
    from ._gaussian import occupations as occupations
    from ._gaussian import purity as purity
    from ._gaussian import reduce as reduce
    from ._gaussian import renyi2_entropy as renyi2_entropy
    from ._gaussian import symplectic_eigenvalues as symplectic_eigenvalues
    from ._gaussian import symplectic_form as symplectic_form
    from ._gaussian import thermal as thermal
    from ._gaussian import to_thewalrus as to_thewalrus
    from ._gaussian import two_mode_squeezed as two_mode_squeezed
    from ._gaussian import vacuum as vacuum
    from ._gaussian import von_neumann_entropy as von_neumann_entropy
    from ._gaussian import wigner as wigner
    from ._integrate import SolverConfig as SolverConfig
    from ._integrate import evolve as evolve
    from ._integrate import time_average as time_average
    from ._lyapunov import solve_lyapunov as solve_lyapunov
    from ._lyapunov_exponent import LyapunovExponent as LyapunovExponent
    from ._lyapunov_exponent import lyapunov_exponent as lyapunov_exponent
    from ._measures import SyncMeasures as SyncMeasures
    from ._measures import complete_sync as complete_sync
    from ._measures import phase_locking_value as phase_locking_value
    from ._measures import phase_sync as phase_sync
    from ._models._base import AbstractGaussianModel as AbstractGaussianModel
    from ._models._base import AbstractLinearModel as AbstractLinearModel
    from ._models._base import AbstractModel as AbstractModel
    from ._models._base import Parameter as Parameter
    from ._models._base import parameter as parameter
    from ._models._base import parameters as parameters
    from ._models.correlated_bath import CorrelatedBathNetwork as CorrelatedBathNetwork
    from ._models.correlated_bath import CorrelatedBathOscillators as CorrelatedBathOscillators
    from ._models.correlated_bath import DarkModes as DarkModes
    from ._models.correlated_bath import correlated_bath_graph as correlated_bath_graph
    from ._models.correlated_bath import correlated_bath_ring as correlated_bath_ring
    from ._models.correlated_bath import dark_modes as dark_modes
    from ._models.correlated_bath import drift_spectrum as drift_spectrum
    from ._models.correlated_bath import exceptional_points as exceptional_points
    from ._models.correlated_bath import exchange_current as exchange_current
    from ._models.optomechanics import OptomechanicalNetwork as OptomechanicalNetwork
    from ._models.optomechanics import optomechanical_pair as optomechanical_pair
    from ._models.presets import MARI2013_FIG2 as MARI2013_FIG2
    from ._models.quadratic import QuadraticLindbladModel as QuadraticLindbladModel
    from ._models.ring import OptomechanicalRing as OptomechanicalRing
    from ._models.ring import RingState as RingState
    from ._models.ring import optomechanical_ring as optomechanical_ring
    from ._optimize import OptimizeHistory as OptimizeHistory
    from ._optimize import optimize as optimize
    from ._results import AbstractResult as AbstractResult
    from ._results import SteadyStateSolution as SteadyStateSolution
    from ._results import TimeAverage as TimeAverage
    from ._results import Trajectory as Trajectory
    from ._solvers import Unrolled as Unrolled
    from ._status import Status as Status
    from ._status import status_message as status_message
    from ._status import status_names as status_names
    from ._steady_state import solve_steady_state as solve_steady_state
    from ._steady_state import steady_state as steady_state
    from ._sweep import sweep as sweep
    from ._wigner import WignerEnsemble as WignerEnsemble
    from ._wigner import WignerSave as WignerSave
    from ._wigner import wigner_ensemble as wigner_ensemble


def _exports() -> dict[str, str]:
    """Public name → the module it is imported from, read from the block above."""
    import ast

    with open(__file__, encoding="utf-8") as file:
        tree = ast.parse(file.read())
    (block,) = [node for node in tree.body
                if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING"]
    return {alias.asname or alias.name: "." * node.level + node.module
            for node in block.body for alias in node.names}


_EXPORTS = _exports()
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value  # later look-ups are plain attribute reads
        return value
    if name == "BlochRing":  # deprecated alias
        import warnings

        warnings.warn(
            "qs.BlochRing is deprecated: use qs.OptomechanicalRing (what qs.optomechanical_ring "
            "returns; BlochRing.from_network is OptomechanicalRing.from_network).",
            DeprecationWarning,
            stacklevel=2,
        )
        return __getattr__("OptomechanicalRing")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
