"""What every benchmark script shares: host/device metadata, where results are written, and the
straightforward NumPy baselines of more than one script."""

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import diffrax as dfx
import jax
import numpy as np

RESULTS = Path(__file__).parent / "results"


def best_of(run, repeats: int):
    """``run()`` ``repeats`` times: (its last result, the least wall time, the least CPU time)."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, min(walls), min(cpus)


def metadata() -> dict:
    """Host, software versions, devices and the load when the run started."""
    devices = jax.devices()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "jax": jax.__version__,
        "diffrax": getattr(dfx, "__version__", None),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
    }


def write_report(name: str, report: dict, output: Path | None = None) -> Path:
    """Write ``report`` as JSON to ``output``, default ``results/<name>_<host>_<backend>.json``."""
    RESULTS.mkdir(exist_ok=True)
    out = output or RESULTS / f"{name}_{platform.node()}_{jax.default_backend()}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    return out


def numpy_batched_lyapunov(A, D):
    """Steady covariances C of A C + C Aᵀ + D = 0 for a batch of (A, D), vectorized NumPy.

    One batched LU of the Kronecker system (A⊗I + I⊗A) vec C = −vec D (row-major vec), the
    straightforward vectorized alternative to a Python loop over
    ``scipy.linalg.solve_continuous_lyapunov``. A, D: (..., m, m).
    """
    m = A.shape[-1]
    eye = np.eye(m)
    K = np.einsum("...ik,jl->...ijkl", A, eye) + np.einsum("ik,...jl->...ijkl", eye, A)
    K = K.reshape(*A.shape[:-2], m * m, m * m)
    C = np.linalg.solve(K, -D.reshape(*D.shape[:-2], m * m, 1))
    return C.reshape(D.shape)
