"""A coordinator for tests and demos: serving on a free 127.0.0.1 port in this process.

    with local_coordinator(tmp_path) as server:
        client = Coordinator(server.address, server.token)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .app import RunningCoordinator, start_in_thread
from .config import load_server_config

# Short timers so lease expiry and dead workers show up within seconds.
FAST = {"scheduler.reap_interval_seconds": 0.1, "scheduler.dead_after_seconds": 2,
        "scheduler.heartbeat_seconds": 1}


@contextmanager
def local_coordinator(data_dir: Path | str, fast: bool = True, **overrides
                      ) -> Iterator[RunningCoordinator]:
    """Start a coordinator with its SQLite store in `data_dir`; stop it on exit.
    `overrides` are dotted config keys, e.g. {"scheduler.lease_seconds": 5}."""
    settings = {"listen": "127.0.0.1:0", "data_dir": str(data_dir), **(FAST if fast else {}),
                **overrides}
    server = start_in_thread(load_server_config(None, **settings))
    try:
        yield server
    finally:
        server.stop(0.2)
