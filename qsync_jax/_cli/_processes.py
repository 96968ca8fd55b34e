"""The processes of ``qsync sweep``: joining a multi-process job, or starting one on this host.

- ``--coordinator HOST:PORT --num-processes N --process-id I`` (all three): this process joins
  a job of ``N`` through JAX's coordination service (process 0 serves it at ``HOST:PORT``).
- None of them, under ``srun`` (more than one task in the step) or Open MPI's ``mpirun``: JAX
  reads the job from the launcher's environment.
- ``--local-processes N``: start ``N`` processes on this host (fresh interpreters, never forked
  from this one), each with ``--devices-per-process`` CPU devices (default: the cores shared
  out), coordinated on a free local port; if one fails, the others are stopped.

Every option is checked before any work; ``jax.distributed.initialize`` runs before JAX
computes anything (the config is read afterwards).
"""

import argparse
import os
import socket
import subprocess
import sys
import time

_JOB = ("coordinator", "num_processes", "process_id")
_LAUNCHERS = ("SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE")  # tasks of an srun step / mpirun


def address(text: str) -> str:
    """``HOST:PORT`` with a port in 1…65535 (an argparse type)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port 1-65535, got {text!r}")
    return text


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


count = _at_least(1)  # argparse types
index = _at_least(0)


def check(args) -> None:
    """``ValueError`` for options that do not describe one job."""
    given = [f"--{name.replace('_', '-')}" for name in _JOB if getattr(args, name) is not None]
    if given and len(given) != len(_JOB):
        raise ValueError("--coordinator, --num-processes and --process-id go together; got only "
                         + ", ".join(given))
    if given and args.local_processes is not None:
        raise ValueError("--local-processes starts its own job: leave out " + ", ".join(given))
    if given and args.process_id >= args.num_processes:
        raise ValueError(f"--process-id must be < --num-processes = {args.num_processes}; got "
                         f"{args.process_id}")


def join(args) -> None:
    """Set this process's CPU devices and join its job, if any (module docstring)."""
    import jax

    from .._devices import use_cpu_devices

    if args.devices_per_process is not None:
        use_cpu_devices(args.devices_per_process)
    if args.coordinator is not None and args.num_processes > 1:
        jax.distributed.initialize(args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id)
    elif args.coordinator is None and any(int(os.environ.get(v, "1")) > 1 for v in _LAUNCHERS):
        jax.distributed.initialize()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args) -> None:
    """Run ``args``'s sweep in ``args.local_processes`` new processes on this host; return when
    all succeeded, or stop them all and raise ``RuntimeError`` when one fails."""
    n = args.local_processes
    from .._devices import _usable_cores

    per_process = args.devices_per_process or max(1, _usable_cores() // n)
    common = [sys.executable, "-m", "qsync_jax._cli", "sweep", args.config,
              "--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", str(n),
              "--devices-per-process", str(per_process)]
    common += ["--out", args.out] if args.out else []
    common += ["--no-progress"] if args.no_progress else []
    env = {k: v for k, v in os.environ.items() if k != "NPROC"}  # each process sizes its pool
    procs = [subprocess.Popen([*common, "--process-id", str(i)], env=env) for i in range(n)]
    try:
        while any(p.poll() is None for p in procs):
            failed = [i for i, p in enumerate(procs) if p.returncode not in (None, 0)]
            if failed:
                raise RuntimeError(f"process {failed[0]} of {n} exited with code "
                                   f"{procs[failed[0]].returncode}; stopped the others")
            time.sleep(0.1)
        failed = [i for i, p in enumerate(procs) if p.returncode != 0]
        if failed:
            raise RuntimeError(f"process {failed[0]} of {n} exited with code "
                               f"{procs[failed[0]].returncode}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
