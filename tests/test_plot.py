"""qsync_jax.plot renders with Agg, returns axes, closes figures, masks failed points."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import qsync_jax as qs  # noqa: E402
import qsync_jax.plot as qplot  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_import_qsync_jax_does_not_import_matplotlib():
    code = "import sys, qsync_jax; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_measures_vs_time_draws_lines_and_averages(tmp_path):
    ts = np.linspace(0, 10, 50)
    ax = qplot.measures_vs_time(ts, {"S_c": np.sin(ts) ** 2, "S_p": np.cos(ts) ** 2},
                                averages={"S_c": 0.5}, time_unit=2 * np.pi, time_label="t / τ")
    assert len(ax.lines) == 3 and ax.get_xlabel() == "t / τ"
    path = qplot.save_figure(ax, tmp_path / "a" / "fig.png")
    assert path.stat().st_size > 1000 and not plt.get_fignums()


def _sweep_dataset():
    mu = np.linspace(0, 1, 5)
    status = np.array(["success", "success", "diverged", "success", "success"])
    return xr.Dataset({"S_c": ("mu", mu ** 2), "status": ("mu", status)}, coords={"mu": mu})


def test_sweep_lines_masks_failed_points():
    ax = qplot.sweep_lines(_sweep_dataset(), "mu", ["S_c"])
    data, failed = ax.lines[0], ax.lines[1]
    assert np.isnan(data.get_ydata()[2]) and np.all(np.isfinite(data.get_ydata()[[0, 1, 3, 4]]))
    np.testing.assert_allclose(failed.get_xdata(), [0.5])
    assert failed.get_label() == "failed"


def test_sweep_heatmap_masks_failed_points():
    x, y = np.linspace(0, 1, 4), np.linspace(0, 2, 3)
    status = np.zeros((3, 4), int)
    status[1, 2] = 1
    ds = xr.Dataset({"S": (("y", "x"), np.ones((3, 4))), "status": (("y", "x"), status)},
                    coords={"x": x, "y": y})
    ax = qplot.sweep_heatmap(ds, "S")
    mesh = ax.collections[0]
    assert np.ma.getmaskarray(mesh.get_array()).reshape(3, 4)[1, 2]
    assert np.ma.getmaskarray(mesh.get_array()).sum() == 1


def test_sweep_heatmap_log_keeps_zeros_apart_from_failed_points():
    x, y = np.linspace(0, 1, 4), np.linspace(0, 2, 3)
    values = np.full((3, 4), 10.0)
    values[0, 0] = 0.0  # a vanishing measure: lowest colour, not grey
    values[2, 3] = 1.0
    status = np.zeros((3, 4), int)
    status[1, 2] = 1
    ds = xr.Dataset({"S": (("y", "x"), values), "status": (("y", "x"), status)},
                    coords={"x": x, "y": y})
    ax = qplot.sweep_heatmap(ds, "S", log=True)
    drawn = ax.collections[0].get_array().reshape(3, 4)
    assert np.ma.getmaskarray(drawn).sum() == 1 and np.ma.getmaskarray(drawn)[1, 2]
    assert drawn[0, 0] == drawn.min() == 0.0  # log10 of the smallest positive value, 1
    np.testing.assert_allclose(drawn[0, 1], 1.0)


def test_spectrum_orbit_and_wigner_render():
    xi = np.linspace(-1, 1, 11)
    ax = qplot.spectrum_vs_parameter(xi, np.stack([xi + 1j, -xi - 1j], -1), part="imag",
                                     marks={"ξ_c": 0.4})
    assert len(ax.lines) == 3
    t = np.linspace(0, 2 * np.pi, 40)
    mean = np.stack([np.cos(t), np.sin(t)], -1)
    states = qs.GaussianState(mean, np.broadcast_to(0.5 * np.eye(2), (40, 2, 2)))
    ax = qplot.orbit(states, 0, n_ellipses=4, ellipse_scale=0.1)
    assert len(ax.patches) == 4
    xs = np.linspace(-3, 3, 21)
    ax = qplot.wigner_map(xs, xs, np.exp(-np.add.outer(xs**2, xs**2)))
    assert ax.get_xlabel() == "x"
