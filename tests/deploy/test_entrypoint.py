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


def test_tls_and_knowledge_settings_reach_the_gateway_and_the_agents(tmp_path: Path):
    fake = tmp_path / "bin" / "genesys"  # stands in for the CLI: prints what it was given
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nenv | grep -E "^GENESYS_(GATEWAY_TLS|LLM_CA|KB_|KNOWLEDGE_)" | sort\n')
    fake.chmod(0o755)
    files = {name: tmp_path / name for name in ("gateway.toml", "server.pem", "server.key", "ca.pem", "token")}
    for path in files.values():
        path.write_text("x\n")
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}", "GENESYS_TLS_CERT": str(files["server.pem"]),
           "GENESYS_TLS_KEY": str(files["server.key"]), "GENESYS_CA_CERT": str(files["ca.pem"])}
    run_ = lambda role, extra: subprocess.run(["sh", str(ENTRYPOINT), role], env=env | extra,  # noqa: E731
                                              capture_output=True, text=True, timeout=30)
    gateway = run_("gateway", {"GENESYS_CONFIG_FILE": str(files["gateway.toml"])})
    assert gateway.returncode == 0, gateway.stderr
    assert f"GENESYS_GATEWAY_TLS__CERT={files['server.pem']}" in gateway.stdout
    assert f"GENESYS_GATEWAY_TLS__KEY={files['server.key']}" in gateway.stdout
    agent = run_("agent", {"GENESYS_COORDINATOR": "c:1", "GENESYS_TOKEN_FILE": str(files["token"]),
                           "GENESYS_LLM_ADDRESS": "gateway:50061"})
    assert agent.returncode == 0, agent.stderr
    for line in (f"GENESYS_LLM_CA_CERT={files['ca.pem']}", f"GENESYS_KB_CA_CERT={files['ca.pem']}",
                 "GENESYS_KB_ADDRESS=gateway:50061", "GENESYS_KNOWLEDGE_ADDRESS=gateway:50061"):
        assert line in agent.stdout.splitlines()
