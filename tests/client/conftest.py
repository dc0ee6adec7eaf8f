"""A real coordinator for SDK and CLI tests."""

from __future__ import annotations

import pytest
from genesys.server.testing import local_coordinator


@pytest.fixture
def server(tmp_path):
    with local_coordinator(tmp_path / "coordinator") as running:
        yield running
