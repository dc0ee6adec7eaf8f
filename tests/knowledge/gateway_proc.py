"""A gateway process serving the KnowledgeService over TLS with bearer tokens, started the
way operators start it (`genesys gateway start --config ...`), restartable on its port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from genesys.llm_gateway.auth import hash_token
from grpc_health.v1 import health_pb2, health_pb2_grpc

GENESYS = [sys.executable, "-c", "from genesys.cli import main; main()"]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TOKENS = {"designer-a": ("worker", "token-of-designer-a"), "designer-b": ("worker", "token-of-designer-b"),
          "operator": ("admin", "token-of-the-operator")}


def make_certs(out: Path) -> Path:
    """deploy/tls/make-certs.sh for 127.0.0.1; returns the folder with ca.pem, server.pem/.key."""
    subprocess.run(["sh", str(DEPLOY / "tls/make-certs.sh"), str(out), "localhost", "127.0.0.1"],
                   check=True, capture_output=True, env=os.environ | {"GENESYS_CERT_OWNER": str(os.getuid())})
    return out


class KnowledgeGateway:
    def __init__(self, root: Path, port: int, certs: Path) -> None:
        self.root, self.certs = root, certs
        self.address = f"127.0.0.1:{port}"
        self.config = root / "gateway.toml"
        self.log = root / "gateway.log"
        self.proc: subprocess.Popen | None = None
        tokens = "".join(f'[[auth.tokens]]\nname = "{name}"\nrole = "{role}"\nsha256 = "{hash_token(token)}"\n'
                         for name, (role, token) in TOKENS.items())
        # the model endpoint is never called: these tests use only the KnowledgeService
        self.config.write_text(
            f'listen = "{self.address}"\ndata_dir = "{root / "data"}"\nhealth_interval_s = 30\n'
            f'[models.m]\nendpoints = ["http://127.0.0.1:9"]\n[auth]\nenabled = true\n{tokens}')

    def env(self) -> dict[str, str]:
        """TLS from GENESYS_GATEWAY_* variables, as deploy/docker/entrypoint.sh passes it."""
        return os.environ | {"GENESYS_GATEWAY_TLS__CERT": str(self.certs / "server.pem"),
                             "GENESYS_GATEWAY_TLS__KEY": str(self.certs / "server.key")}

    def start(self, timeout: float = 90.0) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([*GENESYS, "gateway", "start", "--config", str(self.config)],
                                         stdout=out, stderr=subprocess.STDOUT, env=self.env())
        creds = grpc.ssl_channel_credentials((self.certs / "ca.pem").read_bytes())
        deadline = time.monotonic() + timeout
        with grpc.secure_channel(self.address, creds) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the gateway exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(service="genesys.v1.KnowledgeService"),
                                        timeout=1.0).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"the gateway's KnowledgeService did not come up:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
