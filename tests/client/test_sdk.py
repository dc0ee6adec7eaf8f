"""SDK behaviour that the CLI tests do not reach: discovery of a local server, retries on
UNAVAILABLE, and the worker loop helpers."""

from __future__ import annotations

import socket
import threading
import time

import grpc
import pytest
from genesys.client import Coordinator, CoordinatorError
from genesys.client.coordinator import ClientConfig
from genesys.server.testing import local_coordinator


def test_finds_a_local_server_from_its_data_dir(server):
    cfg = ClientConfig(data_dir=str(server.coordinator.data_dir))
    with Coordinator(config=cfg) as client:
        assert client.address == server.address
        assert client.whoami().role == 1  # the auto-created local admin token


def test_retries_while_the_server_is_unavailable(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = {}

    def start_later():
        time.sleep(1.0)
        box["ctx"] = local_coordinator(tmp_path, listen=f"127.0.0.1:{port}")
        box["server"] = box["ctx"].__enter__()

    threading.Thread(target=start_later).start()
    try:
        with Coordinator(f"127.0.0.1:{port}", "tx.y", retries=8, timeout=5) as client:
            with pytest.raises(CoordinatorError) as err:
                client.list_experiments()  # reaches the server once it is up
            assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
        with Coordinator(f"127.0.0.1:{port}", "tx.y", retries=1, timeout=5) as client:
            box["ctx"].__exit__(None, None, None)
            box.pop("ctx")
            with pytest.raises(CoordinatorError) as err:
                client.list_experiments()
            assert err.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        if "ctx" in box:
            box["ctx"].__exit__(None, None, None)


def test_worker_helpers_round_trip(server):
    with Coordinator(server.address, server.token) as admin:
        admin.create_experiment("sdk", ladder="micro:1", seeds=["gpt"])
        worker_token = admin.create_token("w", "worker").token
    with Coordinator(server.address, worker_token) as w:
        reply = w.register_worker("w", roles=["verify", "design"], cpu_count=2)
        assert reply.heartbeat_seconds > 0 and w.worker_id == reply.worker.id
        job = w.lease_job(timeout=0, kinds=["verify"])
        assert job.kind == "verify" and job.payload["rung"] == "micro"
        beat = w.heartbeat([job])
        assert [lease.job_id for lease in beat.leases] == [job.id]
        w.complete(job, metrics={"piqa": 0.6})
        assert w.lease_job(timeout=0, kinds=["verify"]) is None, "micro budget spent"
        design_job = w.lease_job(timeout=0)
        assert design_job.kind == "design"
        assert w.release(design_job).state == 1
        assert w.deregister().state == 4
