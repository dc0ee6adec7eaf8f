"""Fixtures: a real coordinator serving on 127.0.0.1 in a background thread."""

from __future__ import annotations

import pytest
from genesys.client import Coordinator
from genesys.server.app import start_in_thread
from genesys.server.config import load_server_config

FAST = {"scheduler.reap_interval_seconds": 0.1, "scheduler.dead_after_seconds": 2,
        "scheduler.heartbeat_seconds": 1}


@pytest.fixture
def make_server(tmp_path):
    started = []

    def make(**overrides):
        settings = {"listen": "127.0.0.1:0", "data_dir": str(tmp_path / f"data{len(started)}"),
                    **FAST, **overrides}
        server = start_in_thread(load_server_config(None, **settings))
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop(0.2)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def admin(server):
    with Coordinator(server.address, server.token, retries=1) as client:
        yield client


@pytest.fixture
def as_role(server, admin):
    """A client holding a fresh token of the given role."""
    clients = []

    def make(role: str, ttl: int = 0) -> Coordinator:
        token = admin.create_token(f"{role}-{len(clients)}", role, ttl).token
        client = Coordinator(server.address, token, retries=1)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()
