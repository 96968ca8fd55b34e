"""The drift figure's asymptotics (qsync reproduce mari2013 --figure drift) run and agree with
the tangent vector's quadratic forms written out by hand."""

import jax
import jax.numpy as jnp
import numpy as np

import qsync_jax as qs
from qsync_jax._reproduce import mari2013


def test_drift_asymptotics_match_the_tangent_quadratic_forms():
    model = qs.optomechanical_pair(**mari2013.PAPER)
    orbit, kappa, b_c, b_p, asym = mari2013.drift_asymptotics(model)
    x = orbit.node_points
    f = jax.vmap(lambda p: model.mean_field(0.0, p))(x)
    # ⟨q₋² + p₋²⟩ gained per unit phase variance: ½|f_1 − f_3|² over (x, p) of modes 1 and 3
    want_c = 0.5 * jnp.sum((f[:, 2:4] - f[:, 6:8]) ** 2, axis=-1)
    # phase quadratures p'_k = (−p_k x + x_k p)/r_k in the frame of each mean field
    def phase(k):
        xk, pk = x[:, 2 * k], x[:, 2 * k + 1]
        return (-pk * f[:, 2 * k] + xk * f[:, 2 * k + 1]) / jnp.hypot(xk, pk)
    want_p = 0.5 * (phase(1) - phase(3)) ** 2
    np.testing.assert_allclose(b_c, want_c, rtol=1e-8)
    np.testing.assert_allclose(b_p, want_p, rtol=1e-8, atol=1e-8 * float(jnp.max(want_p)))
    assert kappa > 0 and np.isfinite(asym["S_c_times_t_limit"])
    np.testing.assert_allclose(asym["S_c_times_t_limit"], 6.4e3, rtol=0.01)
