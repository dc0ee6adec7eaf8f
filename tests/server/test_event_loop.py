"""Store calls run on the thread pool: a write stuck behind a database lock (SQLite's busy
wait, a slow fsync) does not stall the other RPCs."""

from __future__ import annotations

import sqlite3
import threading
import time

from genesys.client import Coordinator


def test_a_blocked_write_does_not_stall_reads(server, admin):
    admin.create_experiment("loop", ladder="micro:1", seeds=("gpt",))
    lock = sqlite3.connect(server.coordinator.data_dir / "coordinator.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    done = threading.Event()

    def write() -> None:
        with Coordinator(server.address, server.token, retries=1) as writer:
            writer.create_token("blocked", "worker")
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(0.5)
        assert not done.is_set(), "the write waits for the lock"
        started = time.monotonic()
        assert [e.name for e in admin.list_experiments()] == ["loop"]
        admin.whoami(), admin.list_designs("loop")
        assert time.monotonic() - started < 2.0, "reads answered while a write waits"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    writer.join(30)
    assert done.is_set() and "blocked" in [t.name for t in admin.list_tokens()]
