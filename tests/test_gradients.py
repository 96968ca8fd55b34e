"""Gradients of synchronization and correlation measures against finite differences.

- Correlated bath (steady state, Lyapunov solve): JAX's reverse- and forward-mode derivatives
  of every measure with respect to every parameter against central differences of the same
  measures evaluated on SciPy's Lyapunov solution (an independent solver), under jit and vmap.
- Optomechanical pair (time averages through the Diffrax solve): the checkpointed reverse-mode
  gradient with respect to every parameter leaf, and forward mode (``ForwardMode``), against a
  fourth-order central difference, under jit and vmap.
"""

import dataclasses

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import qsync_jax as qs

# ------------------------------------------------------------------------------------ helpers


def _entries(model):
    """(leaf name, flat index) of every scalar entry of every parameter leaf."""
    return [
        (f.name, k)
        for f in dataclasses.fields(model)
        if isinstance(getattr(model, f.name), jax.Array)
        for k in range(getattr(model, f.name).size)
    ]


def _set(model, name, value):
    return eqx.tree_at(lambda m: getattr(m, name), model, value)


def _shift(model, name, k, h):
    """``model`` with entry k of leaf ``name`` moved by h."""
    leaf = getattr(model, name)
    return _set(model, name, leaf.ravel().at[k].add(h).reshape(leaf.shape))


def _stack(models):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *models)


def _along(model, direction, s):
    return jax.tree_util.tree_map(lambda x, v: x + s * v, model, direction)


def _fourth_order(values, h):
    """f'(0) ≈ [8(f(h) − f(−h)) − (f(2h) − f(−2h))] / 12h from values at (h, −h, 2h, −2h)."""
    f1, fm1, f2, fm2 = values
    return (8.0 * (f1 - fm1) - (f2 - fm2)) / (12.0 * h)


# --------------------------------------------------------------- correlated bath: steady state

BATH = qs.CorrelatedBathOscillators(
    omega=(1.0, 1.2), g=0.3, gamma=0.5, xi=0.4, n_th=(1.0, 0.3)
)
KINDS = ("renyi2", "von_neumann")


def _bath_measures(cov):
    """I₂, I, D₂, D, E_N and S_c of a two-mode steady state (zero mean)."""
    state = qs.GaussianState(jnp.zeros(cov.shape[:-1], dtype=cov.dtype), cov)
    return jnp.stack(
        [qs.mutual_information(cov, kind=k) for k in KINDS]
        + [qs.gaussian_discord(cov, kind=k) for k in KINDS]
        + [qs.log_negativity(cov), qs.complete_sync(state, 0, 1)]
    )


def bath_objective(model):
    return _bath_measures(qs.steady_state(model).cov)


def _scipy_steady_cov(model):
    A = np.asarray(model.drift_matrix())
    D = np.asarray(model.diffusion_matrix())
    return jnp.asarray(scipy.linalg.solve_continuous_lyapunov(A, -D))


@pytest.fixture(scope="module")
def bath_reference():
    """Central differences (h = 1e-6) on SciPy's Lyapunov solution, per parameter entry."""
    h = 1e-6
    measures = jax.jit(_bath_measures)
    fd = {}
    for name, k in _entries(BATH):
        up = measures(_scipy_steady_cov(_shift(BATH, name, k, h)))
        down = measures(_scipy_steady_cov(_shift(BATH, name, k, -h)))
        fd[name, k] = np.asarray((up - down) / (2 * h))
    return fd


def _compare(grads, fd, rtol, atol):
    for (name, k), expected in fd.items():
        got = np.asarray(getattr(grads, name)).reshape(len(expected), -1)[:, k]
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=f"{name}[{k}]")


def test_bath_reverse_and_forward_match_finite_differences(bath_reference):
    reverse = jax.jit(jax.jacrev(bath_objective))(BATH)
    forward = jax.jit(jax.jacfwd(bath_objective))(BATH)
    _compare(reverse, bath_reference, rtol=1e-6, atol=1e-9)
    _compare(forward, bath_reference, rtol=1e-6, atol=1e-9)
    nonzero = [v for v in bath_reference.values() if np.any(np.abs(v[:4]) > 1e-3)]
    assert len(nonzero) >= 6  # the correlations do depend on the parameters


def _bath_information(xi, g):
    model = _set(_set(BATH, "xi", xi), "g", g)
    return qs.mutual_information(qs.steady_state(model).cov, kind="renyi2")


def test_bath_gradients_jit_and_vmap():
    grad = jax.grad(_bath_information, argnums=(0, 1))
    xis, gs = jnp.array([-0.5, 0.1, 0.6]), jnp.array([0.7, -0.2, 0.3])
    batched = jax.jit(jax.vmap(grad))(xis, gs)
    jitted = jax.jit(grad)
    for b in range(3):
        np.testing.assert_allclose(
            [batched[0][b], batched[1][b]], jitted(xis[b], gs[b]), rtol=1e-12
        )
    np.testing.assert_allclose(grad(xis[0], gs[0]), jitted(xis[0], gs[0]), rtol=1e-12)


def test_lyapunov_gradient_is_implicit():
    """The reverse pass of the steady state contains one linear solve, no loop."""
    jaxpr = jax.make_jaxpr(jax.grad(lambda m: bath_objective(m)[0]))(BATH)
    text = str(jaxpr)
    assert "while" not in text and "scan" not in text


# ------------------------------------------------------ optomechanical pair: time averages

PAIR = qs.optomechanical_pair(**qs.MARI2013_FIG2)
WINDOW = (10.0, 25.0)
TIGHT = 1e-11


def pair_measures(t, state):
    """S_c, S_p, Gaussian discord and log-negativity of the two mechanical modes (1, 3)."""
    return jnp.stack(
        [
            qs.complete_sync(state, 1, 3),
            qs.phase_sync(state, 1, 3),
            qs.gaussian_discord(state.cov, (1,), (3,)),
            qs.log_negativity(state.cov, (1,), (3,)),
        ]
    )


def _averaged(model, adjoint):
    config = qs.SolverConfig(rtol=TIGHT, atol=TIGHT, adjoint=adjoint)
    return qs.time_average(model, pair_measures, WINDOW, config=config).value


def reverse_objective(model):
    return _averaged(model, dfx.RecursiveCheckpointAdjoint())


def forward_objective(model):
    return _averaged(model, dfx.ForwardMode())


def _relative_direction(model, seed):
    """A random direction: every entry perturbed relative to its size (0.1 where it is 0)."""
    leaves, treedef = jax.tree_util.tree_flatten(model)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    directions = [
        jax.random.normal(key, x.shape, dtype=x.dtype) * jnp.where(x == 0, 0.1, jnp.abs(x))
        for key, x in zip(keys, leaves)
    ]
    return jax.tree_util.tree_unflatten(treedef, directions)


WEIGHTS = jnp.array([1.0, -0.5, 2.0, 1.0])


def weighted_reverse_objective(model):
    return WEIGHTS @ reverse_objective(model)


@pytest.mark.slow  # pair gradients stay in the default suite: test_integrate, test_optomechanics
def test_pair_gradients_match_finite_differences_jit_and_vmap():
    """All parameters at once, along random directions v: forward-mode jvp (vmapped over two
    models), the checkpointed reverse-mode gradient (of a weighted sum of the four measures)
    and fourth-order differences agree."""
    models = [PAIR, _set(PAIR, "mu", 1.5 * PAIR.mu)]
    directions = [_relative_direction(m, seed) for seed, m in enumerate(models)]
    h = 1e-4
    shifted = [_along(m, v, s * h) for m, v in zip(models, directions) for s in (1, -1, 2, -2)]
    # One vmapped call: the jvps at the two models, and the values at the shifted models.
    zero = jax.tree_util.tree_map(jnp.zeros_like, PAIR)
    jvp = jax.jit(jax.vmap(lambda m, v: jax.jvp(forward_objective, (m,), (v,))))
    values, tangent = jvp(_stack(models + shifted), _stack(directions + [zero] * 8))
    fd = [_fourth_order(values[2:].reshape(2, 4, -1)[b], h) for b in range(2)]
    for b in range(2):
        assert np.all(np.abs(np.asarray(fd[b][:3])) > 1e-4)  # S_c, S_p, discord vary
        # Norm-wise relative agreement: 1e-5 of the largest component (the discord's derivative
        # is ~1e-4 of S_c's here, below the finite-difference noise floor of 1e-5 relative).
        np.testing.assert_allclose(tangent[b], fd[b], rtol=1e-5,
                                   atol=1e-5 * float(np.abs(fd[b]).max()))

    grad = jax.jit(jax.grad(weighted_reverse_objective))(PAIR)
    along = sum(
        jnp.sum(g * v)
        for g, v in zip(jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(directions[0]))
    )
    np.testing.assert_allclose(along, WEIGHTS @ fd[0], rtol=1e-5)
    np.testing.assert_allclose(along, WEIGHTS @ tangent[0], rtol=1e-8)


@pytest.mark.slow
def test_pair_gradient_every_entry_matches_finite_differences():
    """Entry by entry (μ matrix entries included): reverse gradient vs fourth-order differences."""
    grad = jax.jit(jax.jacrev(reverse_objective))(PAIR)
    entries = _entries(PAIR)
    steps = {
        (name, k): 1e-4 * max(abs(float(getattr(PAIR, name).ravel()[k])), 0.1)
        for name, k in entries
    }
    shifted = [
        _shift(PAIR, name, k, s * steps[name, k]) for name, k in entries for s in (1, -1, 2, -2)
    ]
    values = jax.jit(jax.vmap(reverse_objective))(_stack(shifted)).reshape(len(entries), 4, -1)
    for i, (name, k) in enumerate(entries):
        fd = _fourth_order(values[i], steps[name, k])
        got = np.asarray(getattr(grad, name)).reshape(4, -1)[:, k]
        np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-9, err_msg=f"{name}[{k}]")
