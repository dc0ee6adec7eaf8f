"""The dashboard as the deploy images run it: `entrypoint.sh dashboard` (flags --coordinator
and --listen, the token from GENESYS_TOKEN_FILE, TLS with GENESYS_CA_CERT) against a TLS
coordinator, answering the image's health check."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from deploy.conftest import DEPLOY, certs, tls_coordinator, tool_env  # noqa: F401 (fixtures)

from .conftest import READY


def test_entrypoint_serves_the_dashboard_over_tls(tls_coordinator, tmp_path: Path):  # noqa: F811
    admin = tls_coordinator.client()
    admin.create_experiment("tls-dash", description="over TLS", ladder="micro:2", seeds=["gpt"])
    token = tmp_path / "dashboard_token"
    token.write_text(admin.create_token("dashboard", "submitter").token + "\n")
    env = tool_env(GENESYS_COORDINATOR=tls_coordinator.address, GENESYS_TOKEN_FILE=str(token),
                   GENESYS_CA_CERT=str(tls_coordinator.ca), GENESYS_UI_LISTEN="127.0.0.1:0")
    proc = subprocess.Popen(["sh", str(DEPLOY / "docker/entrypoint.sh"), "dashboard"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(READY), line + proc.stderr.read()
        url = line[len(READY):].split()[0]
        with urllib.request.urlopen(url, timeout=20) as reply:
            page = reply.read().decode()
        assert 'href="/e/tls-dash"' in page and "over TLS" in page
        health = subprocess.run([sys.executable, str(DEPLOY / "docker/healthcheck.py"), "http", url],
                                capture_output=True, text=True, timeout=30)
        assert health.returncode == 0, health.stderr
    finally:
        proc.terminate()
        proc.wait(10)
