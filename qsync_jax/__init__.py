"""qsync_jax: quantum synchronization of Gaussian continuous-variable open systems, in JAX.

Conventions (ħ = 1, xpxp ordering, vacuum covariance ½·I) are defined in
:mod:`qsync_jax._gaussian`. Importing this package has no side effects: enable float64 yourself
with ``jax.config.update("jax_enable_x64", True)``.
"""

from ._gaussian import GaussianState as GaussianState
from ._models._base import AbstractLinearModel as AbstractLinearModel
from ._models._base import AbstractModel as AbstractModel
from ._integrate import SolverConfig as SolverConfig
from ._integrate import TimeAverage as TimeAverage
from ._integrate import Trajectory as Trajectory
from ._integrate import evolve as evolve
from ._integrate import time_average as time_average
from ._status import Status as Status
from ._status import status_message as status_message
from ._status import status_names as status_names
from ._models.optomechanics import OptomechanicalNetwork as OptomechanicalNetwork
from ._models.optomechanics import optomechanical_pair as optomechanical_pair
from ._models.optomechanics import optomechanical_ring as optomechanical_ring
from ._measures import complete_sync as complete_sync
from ._measures import phase_sync as phase_sync
