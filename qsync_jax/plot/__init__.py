"""Matplotlib figures for qsync_jax (import explicitly: ``import qsync_jax.plot``).

Every function takes ``ax=None`` (a new figure is made when omitted), returns the axes, and never
calls ``plt.show()``. Figures share one publication style (:func:`style`).
"""

from ._lines import measures_vs_time as measures_vs_time
from ._lines import sweep_lines as sweep_lines
from ._maps import sweep_heatmap as sweep_heatmap
from ._phase_space import covariance_ellipse as covariance_ellipse
from ._phase_space import orbit as orbit
from ._phase_space import wigner_map as wigner_map
from ._spectrum import spectrum_vs_parameter as spectrum_vs_parameter
from ._style import new_axes as new_axes
from ._style import save_figure as save_figure
from ._style import style as style
