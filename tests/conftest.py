"""Shared pytest fixtures."""

from __future__ import annotations

import socket
import sys

import pytest


@pytest.fixture(autouse=True)
def _denormals_back_on():
    """Training code flushes denormal floats to zero for speed (torch.set_flush_denormal),
    a process-wide CPU flag; put it back after each test, or later tests that make floats
    (hypothesis cannot represent subnormals then) fail for a reason not theirs."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def searchable_tmp_path(tmp_path):
    """tmp_path with its temp-dir ancestors made searchable (0755): sandboxed children run
    as another uid (as root) and must reach job dirs below it (pytest creates 0700 dirs)."""
    import tempfile
    from pathlib import Path

    for folder in (tmp_path, *tmp_path.parents):
        if folder == Path(tempfile.gettempdir()) or folder == Path(folder.anchor):
            break
        folder.chmod(folder.stat().st_mode | 0o755)
    return tmp_path
