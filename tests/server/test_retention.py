"""What the coordinator stores stays bounded: old events are pruned, dead and deregistered
workers are forgotten, and draining workers that fall silent become DEAD too."""

from __future__ import annotations

import time

from genesys.client import Coordinator
from genesys.v1 import job_pb2


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.1)


def test_events_are_pruned_to_the_newest(make_server):
    server = make_server(**{"retention.events": 5, "retention.prune_interval_seconds": 0.2})
    with Coordinator(server.address, server.token, retries=1) as admin:
        admin.create_experiment("rx", ladder="micro:1", seeds=("gpt", "retnet", "ttt"))
        published = len(admin.enqueue_design_jobs("rx", 20)) + 4  # + created, 3 seeds
        store = server.coordinator.store
        wait_until(lambda: store.last_event_seq() >= published
                   and len(store.events_after(0, "", 1000)) <= 5)
        kept = store.events_after(0, "", 1000)
        assert kept and kept[-1].seq == store.last_event_seq(), "the newest are kept"
        replay = admin.watch("rx", after_seq=0, timeout=1)
        assert [e.seq for e in replay] == [e.seq for e in kept if e.experiment == "rx"]


def test_silent_draining_workers_die_and_dead_workers_are_forgotten(make_server):
    server = make_server(**{"retention.dead_workers_seconds": 2.5,
                            "retention.prune_interval_seconds": 0.2})
    with Coordinator(server.address, server.token, retries=1) as admin:
        token = admin.create_token("w", "worker").token
        with Coordinator(server.address, token, retries=1) as w:
            w.register_worker("drainer", roles=["verify"])
            w.heartbeat(draining=True)
            state = {x.id: x.state for x in admin.list_workers(include_dead=True)}
            assert state[w.worker_id] == job_pb2.WORKER_STATE_DRAINING
            wait_until(lambda: admin.list_workers() == [])  # dead after 2 s silent
            assert admin.list_workers(include_dead=True)[0].state == job_pb2.WORKER_STATE_DEAD
            wait_until(lambda: admin.list_workers(include_dead=True) == [])
            assert server.coordinator.store.get_worker(w.worker_id) is None
