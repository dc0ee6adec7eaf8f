"""Fixtures: a real coordinator serving on 127.0.0.1 in a background thread."""

from __future__ import annotations

import itertools
from contextlib import ExitStack

import pytest
from genesys.client import Coordinator
from genesys.server.testing import local_coordinator


@pytest.fixture
def make_server(tmp_path):
    numbers = itertools.count()
    with ExitStack() as stack:
        def make(**overrides):
            data_dir = tmp_path / f"data{next(numbers)}"
            return stack.enter_context(local_coordinator(data_dir, **overrides))

        yield make


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
