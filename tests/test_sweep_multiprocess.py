"""Sweeps in a multi-process JAX job: 2 processes × 2 CPU devices on localhost equal one process.

Each job runs tests/multiprocess_worker.py (or ``qsync sweep``) in fresh interpreters with a
coordinator on a free local port; the Datasets every process returns are compared with the same
sweep run in this process.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
from sweep_cases import BATH_AXES, bath, pair

import qsync_jax as qs
from qsync_jax._cli import main
from qsync_jax._cli._sweep_config import load

TESTS = Path(__file__).parent
ROOT = TESTS.parent
TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    env.pop("NPROC", None)
    return env


def _job(cases, out, checkpoint=None, die=None, n=2):
    """Start the ``n`` processes of a job running the sweeps ``cases``."""
    port = str(_free_port())
    extra = [str(checkpoint)] if checkpoint else []
    return [
        subprocess.Popen(
            [sys.executable, str(TESTS / "multiprocess_worker.py"), cases, str(out), port,
             str(n), str(i), *extra, *(["die"] if die == i else [])],
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(n)
    ]


def _finish(procs):
    """Wait for every process; each must succeed (a hang fails the test, not the suite)."""
    deadline = time.monotonic() + TIMEOUT
    errors = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a process of the job hung")
        errors.append(err)
    assert all(p.returncode == 0 for p in procs), "\n".join(errors)


@pytest.fixture(scope="module")
def bath_reference():
    """The bath sweep of sweep_cases, in this (single) process."""
    return bath()


def _assert_same(ds, ref):
    """Equal values (bitwise or within 1e-12), status and labels."""
    xr.testing.assert_allclose(ds.drop_vars("status"), ref.drop_vars("status"), rtol=1e-12,
                               atol=1e-12)
    assert list(ds.status.values) == list(ref.status.values)
    assert set(ds.attrs) == set(ref.attrs)


def _job_matches_one_process(case, reference, tmp_path):
    _finish(_job(case, tmp_path / "out"))
    every = [xr.load_dataset(tmp_path / f"out.{case}.{i}.nc") for i in range(2)]
    assert every[0].identical(every[1])  # every process returns the whole Dataset
    _assert_same(every[0], reference)
    return every[0]


@pytest.mark.slow  # the default suite compares the same sweep in the kill-and-resume test
def test_two_processes_give_the_single_process_bath_dataset(tmp_path, bath_reference):
    ds = _job_matches_one_process("bath", bath_reference, tmp_path)
    # uneven chunks (3, 3, 3, 2 points, padded on 2 devices), failures in both processes'
    # shares (point 0: chunk 0, process 0; point 10: chunk 3, process 1)
    status = ds.status.values
    assert list(status[[0, 10]]) == ["no_steady_state"] * 2 and (status == "success").sum() >= 5


@pytest.mark.slow  # the default suite runs multi-process jobs of the bath sweep (same machinery)
def test_two_processes_give_the_single_process_time_averages(tmp_path):
    _job_matches_one_process("pair", pair(), tmp_path)


def _records(path):
    """Chunk numbers recorded in every process's chunk log, one entry per computation."""
    return [json.loads(line)["chunk"] for log in sorted(path.glob("chunks*.jsonl"))
            for line in log.read_text().splitlines()]


def test_killed_process_resumes_without_recomputing(tmp_path, bath_reference):
    checkpoint = tmp_path / "ckpt"
    procs = _job("bath_chunks_of_one", tmp_path / "killed", checkpoint, die=1)
    deadline = time.monotonic() + TIMEOUT
    while procs[1].poll() is None:  # process 1 SIGKILLs itself after its first chunk
        assert time.monotonic() < deadline and procs[0].poll() is None, "job ended early"
        time.sleep(0.05)
    procs[0].kill()  # the launcher ends the job
    for p in procs:
        p.communicate()
    assert procs[1].returncode == -9
    before = _records(checkpoint)
    assert 1 in before and not set(before) >= set(range(11)), before

    _finish(_job("bath_chunks_of_one", tmp_path / "resumed", checkpoint))
    after = _records(checkpoint)
    assert sorted(after) == list(range(11)), after  # every chunk computed exactly once
    for i in range(2):
        _assert_same(xr.load_dataset(tmp_path / f"resumed.bath_chunks_of_one.{i}.nc"),
                     bath_reference)


BATH_TOML = """
output = "bath.nc"
[model]
kind = "correlated-bath"
omega = [1.0, 1.0]
g = 0.1
gamma = 0.5
n_th = [0.0, 1.0]
[sweep]
batch_size = 3
[sweep.axes]
xi = {{start = -1.0, stop = 1.0, num = {num}}}
"""


def _qsync(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "qsync_jax._cli", "sweep", *args], cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_local_processes_write_the_single_process_output_once(tmp_path, bath_reference):
    (tmp_path / "bath.toml").write_text(BATH_TOML.format(num=len(BATH_AXES["xi"])))
    proc = _qsync("bath.toml", "--local-processes", "2", "--devices-per-process", "2",
                  "--no-progress", cwd=tmp_path)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert [x for x in out.splitlines() if x.startswith("wrote")] == ["wrote bath.nc"]  # once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bath.nc", "bath.toml"]
    ds = xr.load_dataset(tmp_path / "bath.nc", engine="h5netcdf")
    plan = load(tmp_path / "bath.toml")  # the same sweep in this process
    ref = qs.sweep(plan.fn, plan.model, plan.axes, progress=False, **plan.options)
    _assert_same(ds.drop_attrs(), ref.drop_attrs())
    assert (ds.status.values == "no_steady_state").sum() >= 2


def test_processes_with_different_configs_all_refuse(tmp_path):
    for i, num in enumerate((11, 12)):
        (tmp_path / f"{i}.toml").write_text(BATH_TOML.format(num=num))
    port = str(_free_port())
    procs = [_qsync(f"{i}.toml", "--coordinator", f"localhost:{port}", "--num-processes", "2",
                    "--process-id", str(i), "--devices-per-process", "1", cwd=tmp_path)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 2
        line = [x for x in err.splitlines() if x.startswith("qsync")]
        assert len(line) == 1 and "differ from process 0 in config file" in line[0], err
    assert not (tmp_path / "bath.nc").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--num-processes", "0"], "expected an integer >= 1, got '0'"),
        (["--num-processes", "two"], "expected an integer >= 1, got 'two'"),
        (["--process-id", "-1"], "expected an integer >= 0, got '-1'"),
        (["--process-id", "1.5"], "expected an integer >= 0, got '1.5'"),
        (["--coordinator", "localhost"], "expected HOST:PORT"),
        (["--coordinator", "localhost:0"], "expected HOST:PORT"),
        (["--coordinator", ":1234"], "expected HOST:PORT"),
        (["--coordinator", "host:99999"], "expected HOST:PORT"),
        (["--local-processes", "0"], "expected an integer >= 1"),
        (["--devices-per-process", "-2"], "expected an integer >= 1"),
        (["--num-processes", "2"], "go together; got only --num-processes"),
        (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"],
         "--process-id must be < --num-processes = 2; got 2"),
        (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "0",
          "--local-processes", "2"], "--local-processes starts its own job"),
    ],
)
def test_bad_job_options_fail_in_one_line_before_work(argv, match, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(BATH_TOML.format(num=3))
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(config), *argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1 and match in lines[0], err
    assert not (tmp_path / "c.nc").exists()
