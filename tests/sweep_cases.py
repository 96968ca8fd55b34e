"""Sweeps run alike in one process and in every process of a multi-process job
(tests/test_sweep_multiprocess.py, tests/multiprocess_worker.py)."""

import jax
import jax.numpy as jnp
import numpy as np

import qsync_jax as qs

# On resonance, |xi| = 1 leaves a dark mode: no steady state at the first and last points.
# 11 points in chunks of 3: chunks 0 and 2 run in process 0, chunks 1 and 3 (the last point,
# which fails) in process 1; 3 points on 2 devices are padded to 4.
BATH = qs.CorrelatedBathOscillators(omega=(1.0, 1.0), g=0.1, gamma=0.5, xi=0.0, n_th=(0.0, 1.0))
BATH_AXES = {"xi": np.linspace(-1.0, 1.0, 11)}


def steady(model):
    return qs.solve_steady_state(model, throw=False)


def bath(checkpoint=None):
    return qs.sweep(steady, BATH, BATH_AXES, batch_size=3, progress=False, checkpoint=checkpoint)


# A short optomechanical time average: 5 points in chunks of 2 (owners 0, 1, 0).
PAIR = qs.optomechanical_pair(omega=(1.0, 1.005), kappa=0.15, gamma=0.005, g=0.005, E=48.0,
                              mu=0.02)
PAIR_AXES = {"mu": np.linspace(0.0, 0.04, 5)}
MEASURES = qs.SyncMeasures([(1, 3)])


def pair_average(window, model):
    return qs.time_average(model, MEASURES, window, throw=False)


short_average = jax.tree_util.Partial(pair_average, jnp.array([20.0, 40.0]))


def pair(checkpoint=None):
    return qs.sweep(short_average, PAIR, PAIR_AXES, batch_size=2, progress=False,
                    checkpoint=checkpoint)


def bath_chunks_of_one(checkpoint=None):
    """The bath sweep in 11 chunks: chunks 0, 2, …, 10 in process 0, 1, 3, …, 9 in process 1."""
    return qs.sweep(steady, BATH, BATH_AXES, batch_size=1, progress=False, checkpoint=checkpoint)


CASES = {"bath": bath, "pair": pair, "bath_chunks_of_one": bath_chunks_of_one}
