"""kill -9 the coordinator while workers hold leases, restart it on the same SQLite store:
everything committed is there, leases resume or expire and requeue, nothing completes twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from genesys.client import Coordinator, CoordinatorError
from genesys.v1 import experiment_pb2, job_pb2

START = [sys.executable, "-c", "from genesys.cli import main; main()", "server", "start",
         "--listen", "127.0.0.1:0"]


def start(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "GENESYS_SCHEDULER_REAP_INTERVAL_SECONDS": "0.2"}
    proc = subprocess.Popen([*START, "--data-dir", str(data_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    for line in proc.stdout:
        if "ready address=" in line:
            return proc, line.strip().rsplit("=", 1)[1]
    raise RuntimeError(f"coordinator did not start (exit {proc.wait()})")


def test_kill9_and_restart_keeps_committed_state(tmp_path):
    proc, address = start(tmp_path)
    token = (tmp_path / "token").read_text().strip()
    try:
        admin = Coordinator(address, token, retries=1)
        cfg = experiment_pb2.ExperimentConfig()
        cfg.jobs.lease_seconds = 4
        admin.create_experiment("crash", cfg, ladder="micro:5", seeds=("gpt", "retnet", "ttt"))
        worker_token = admin.create_token("w", "worker").token
        w = Coordinator(address, worker_token, retries=1)
        w.register_worker("w", roles=["verify"])
        done, resumed, abandoned = (w.lease_job(timeout=0) for _ in range(3))
        w.complete(done, metrics={"piqa": 0.7})
        extra = admin.submit_design("crash", source=admin.get_design(done.payload["design_id"]).source
                                    .replace("CONFIG = {", "CONFIG = {'v': 1, ", 1))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    time.sleep(4.5)  # down longer than the 4 s leases
    proc, address = start(tmp_path)
    try:
        admin = Coordinator(address, token, retries=1)
        w2 = Coordinator(address, worker_token, retries=1)
        w2.worker_id = w.worker_id
        assert admin.get_design(extra.id).digest == extra.digest
        assert admin.get_design(done.payload["design_id"]).results[0].metrics["piqa"] == \
            pytest.approx(0.7)
        micro = admin.get_budget("crash").ledger.rungs[0]
        assert (micro.committed, micro.reserved) == (1, 2)
        # Down time does not count against leases: both still held after the restart...
        leased = {j.id for j in admin.list_jobs("crash", state="leased")}
        assert leased == {resumed.id, abandoned.id}
        # ...a lease held through the crash resumes under its fencing token...
        assert w2.renew(resumed) is False
        # ...a completed job does not complete twice...
        assert w2.complete(done, metrics={"piqa": 0.1}).already_completed
        assert admin.get_design(done.payload["design_id"]).results[0].metrics["piqa"] == \
            pytest.approx(0.7)
        # ...and a lease nobody renews expires back into the queue.
        deadline = time.monotonic() + 10
        while admin.get_job(abandoned.id).state != job_pb2.JOB_STATE_QUEUED:
            assert time.monotonic() < deadline, "the abandoned lease never expired"
            w2.renew(resumed)
            time.sleep(0.3)
        with pytest.raises(CoordinatorError) as err:
            w2.complete(abandoned, metrics={"piqa": 0.5})
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
        again = w2.lease_job(timeout=1)
        assert again.id == abandoned.id and again.job.attempt == 2
        w2.complete(resumed, metrics={"piqa": 0.6})
        w2.complete(again, metrics={"piqa": 0.65})
        micro = admin.get_budget("crash").ledger.rungs[0]
        assert (micro.committed, micro.reserved) == (3, 0)
        completions = [j for j in admin.list_jobs("crash", state="succeeded")]
        assert len(completions) == len({j.id for j in completions}) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, "SIGTERM shuts down gracefully"
