"""The images' entrypoint refuses to start on a missing config or secret, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[2] / "deploy/docker/entrypoint.sh"
EX_CONFIG = 78


def run(role: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(["sh", str(ENTRYPOINT), role, *args], env=base | env,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("role", "env", "named"), [
    ("coordinator", {"GENESYS_CONFIG_FILE": "/nonexistent/coordinator.toml"}, "coordinator config"),
    ("agent", {}, "GENESYS_COORDINATOR"),
    ("agent", {"GENESYS_COORDINATOR": "c:1", "GENESYS_TOKEN_FILE": "/nonexistent/token"}, "worker token"),
    ("gateway", {"GENESYS_CONFIG_FILE": "/nonexistent/gateway.toml"}, "gateway config"),
    ("dashboard", {"GENESYS_COORDINATOR": "c:1"}, "dashboard token"),
    ("token", {"GENESYS_NEW_TOKEN_OUT": "/nonexistent/t", "GENESYS_COORDINATOR": "c:1"}, "admin token"),
])
def test_missing_config_or_secret_is_refused_by_name(role, env, named):
    out = run(role, env)
    assert out.returncode == EX_CONFIG, out.stderr
    assert named in out.stderr


def test_tls_files_are_required_unless_tls_is_switched_off(tmp_path: Path):
    config = tmp_path / "coordinator.toml"
    config.write_text('listen = "127.0.0.1:1"\n')
    out = run("coordinator", {"GENESYS_CONFIG_FILE": str(config)})
    assert out.returncode == EX_CONFIG and "TLS certificate (GENESYS_TLS_CERT)" in out.stderr
    token = tmp_path / "token"
    token.write_text("t.secret\n")
    out = run("agent", {"GENESYS_COORDINATOR": "c:1", "GENESYS_TOKEN_FILE": str(token)})
    assert out.returncode == EX_CONFIG and "CA certificate (GENESYS_CA_CERT)" in out.stderr
    out = run("gateway", {"GENESYS_CONFIG_FILE": str(config)})
    assert out.returncode == EX_CONFIG and "TLS certificate (GENESYS_TLS_CERT)" in out.stderr


def test_empty_secret_file_is_refused(tmp_path: Path):
    (tmp_path / "url").write_text("")
    out = run("coordinator", {"GENESYS_STORE_URL_FILE": str(tmp_path / "url")})
    assert out.returncode == EX_CONFIG and "is empty" in out.stderr


def test_unknown_role_is_a_clear_error():
    out = run("scheduler", {})
    assert out.returncode == EX_CONFIG and "unknown role 'scheduler'" in out.stderr
