"""Hostile designs through the real checker (``genesys.lmade.checker.check``): what they
try is contained by the OS layers (their static bypasses pass the format check on purpose),
the report names it, and nothing secret reaches the report."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from genesys.lmade.checker import check
from genesys.lmade.sandbox import isolation

DESIGNS = Path(__file__).resolve().parent / "designs"

pytestmark = pytest.mark.skipif(not isolation().jail, reason="no allowlist jail on this host")


@pytest.fixture
def planted_secrets(tmp_path):
    """A world-readable secret in the host's temp dir and one in the parent's home."""
    token = secrets.token_hex(16)
    paths = [tmp_path / "secret", Path.home() / f".genesys-jail-test-{token[:8]}"]
    for path in paths:
        path.write_text(token)
        path.chmod(0o644)
    yield token, paths
    paths[1].unlink()


def test_native_reads_of_host_files_leak_nothing_into_the_report(planted_secrets):
    token, paths = planted_secrets
    source = (DESIGNS / "native_secret.py").read_text()
    for path in paths:
        source = source.replace('"SECRET"', repr(str(path)), 1)
    report = check(source)
    assert not report.valid and report.failed.name == "init"
    # torch.from_file: no such file (RuntimeError) for both secrets and /etc/shadow; the
    # jail's own passwd, with no host user in it
    assert "found: RuntimeError | RuntimeError | RuntimeError | sandbox:x:" in \
        report.failed.message
    text = report.to_json()
    assert token not in text, text[max(0, text.find(token) - 400):text.find(token) + 100]
    assert "root:x:0:0" not in text  # the host's passwd


def test_a_stdout_flood_stops_the_check_with_reason_flood():
    report = check(DESIGNS / "stdout_flood.py")
    assert not report.valid and report.failed.name == "init"
    assert report.sandbox["reason"] == "flood" and "stdout/stderr" in report.failed.message
