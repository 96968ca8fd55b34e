"""The truncated-Wigner reproduction (qsync reproduce all): the scaled models start from the
locked mean divided by λ, and a linearized solve out of its regime is recorded, not raised."""

import jax.numpy as jnp
import numpy as np

import qsync_jax as qs
from qsync_jax._reproduce import wigner


def test_scaled_mean_field_is_the_paper_one_divided_by_lambda():
    lam, ts = 10.0, jnp.array([50.0, 200.0])
    paper = wigner.PAPER
    scaled = {**paper, "g": paper["g"] * lam, "E": paper["E"] / lam}
    mean = qs.evolve(qs.optomechanical_pair(**paper), ts).states.mean
    mean_scaled = qs.evolve(qs.optomechanical_pair(**scaled), ts).states.mean
    np.testing.assert_allclose(mean_scaled, mean / lam, rtol=1e-6, atol=1e-6 * float(
        jnp.max(jnp.abs(mean))) / lam)


def test_case_out_of_the_linear_regime_keeps_the_wigner_ensemble():
    lam = 100.0  # R ≈ 5: the linearized window [1000, 1050] leaves its regime
    paper = wigner.PAPER
    locked = qs.evolve(qs.optomechanical_pair(**paper), jnp.array([200.0])).states.mean[0]
    params = {**paper, "g": paper["g"] * lam, "E": paper["E"] / lam}
    case = wigner._case(params, locked / lam, window=50.0, n=32, dt=0.05, quick=True)
    assert case["linearized_status"] == "linearization_broken"
    assert np.all(np.isnan(case["linearized"]["S_c"]))
    assert case["status"] == "success"
    assert np.all(np.isfinite(case["wigner"]["S_c"]))
    np.testing.assert_allclose(case["radius"], 500 / lam, rtol=0.1)
