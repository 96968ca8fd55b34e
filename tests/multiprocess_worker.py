"""One process of a multi-process sweep (tests/test_sweep_multiprocess.py), as a user writes it.

``python multiprocess_worker.py CASES OUT PORT N_PROCESSES PROCESS_ID [CHECKPOINT [DIE]]`` runs
the sweeps ``CASES`` (names of :data:`sweep_cases.CASES`, joined by ``+``) on two CPU devices in
process ``PROCESS_ID`` of a job of ``N_PROCESSES`` (coordinator on localhost:PORT), writing each
Dataset to ``OUT.<case>.<PROCESS_ID>.nc``. With ``DIE`` = ``die``, the process SIGKILLs itself
right after it saved its first checkpoint chunk.
"""

import os
import signal
import sys

import jax

import qsync_jax as qs

if __name__ == "__main__":
    qs.use_cpu_devices(2)
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    cases, out, port, n, i = sys.argv[1:6]
    checkpoint, die = (sys.argv[6:] + [None, None])[:2]
    if int(n) > 1:
        jax.distributed.initialize(f"localhost:{port}", num_processes=int(n), process_id=int(i))
    assert len(jax.local_devices()) == 2 and len(jax.devices()) == 2 * int(n)

    from sweep_cases import CASES

    if die == "die":
        from qsync_jax._sweep._checkpoint import Checkpoint

        save = Checkpoint.save

        def save_then_die(self, k, arrays):
            save(self, k, arrays)
            os.kill(os.getpid(), signal.SIGKILL)

        Checkpoint.save = save_then_die

    for case in cases.split("+"):
        ds = CASES[case](checkpoint=checkpoint)
        ds.to_netcdf(f"{out}.{case}.{i}.nc", engine="scipy")
