"""One process of a multi-process sweep (tests/test_sweep_multiprocess.py), as a user writes it.

``python multiprocess_worker.py CASE OUT PORT N_PROCESSES PROCESS_ID [CHECKPOINT]`` runs sweep
``CASE`` of :data:`CASES` on two CPU devices in process ``PROCESS_ID`` of a job of
``N_PROCESSES`` (coordinator on localhost:PORT) and writes its Dataset to ``OUT.<PROCESS_ID>.nc``.
"""

import sys

import jax

import qsync_jax as qs

if __name__ == "__main__":
    qs.use_cpu_devices(2)
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    case, out, port, n, i = sys.argv[1:6]
    if int(n) > 1:
        jax.distributed.initialize(f"localhost:{port}", num_processes=int(n), process_id=int(i))
    assert len(jax.local_devices()) == 2 and len(jax.devices()) == 2 * int(n)

from sweep_cases import CASES  # noqa: E402

if __name__ == "__main__":
    checkpoint = sys.argv[6] if len(sys.argv) > 6 else None
    ds = CASES[case](checkpoint=checkpoint)
    ds.to_netcdf(f"{out}.{i}.nc", engine="scipy")
