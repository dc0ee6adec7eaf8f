"""TLS and mutual TLS between the SDK and the coordinator (self-signed certificates)."""

from __future__ import annotations

import shutil
import subprocess

import grpc
import pytest
from genesys.client import Coordinator, CoordinatorError
from genesys.client.coordinator import ClientConfig
from genesys.server.testing import local_coordinator

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def self_signed(folder, name: str) -> tuple[str, str]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_and_mutual_tls(tmp_path):
    cert, key = self_signed(tmp_path, "server")
    client_cert, client_key = self_signed(tmp_path, "client")
    with local_coordinator(tmp_path / "a", **{"tls.cert": cert, "tls.key": key}) as server:
        with Coordinator(server.address, server.token, ca_cert=cert, retries=1) as c:
            assert c.list_experiments() == []
        with Coordinator(server.address, server.token, retries=1, timeout=3) as plain:
            with pytest.raises(CoordinatorError) as err:
                plain.list_experiments()
            assert err.value.code == grpc.StatusCode.UNAVAILABLE
    mtls = {"tls.cert": cert, "tls.key": key, "tls.client_ca": client_cert}
    with local_coordinator(tmp_path / "b", **mtls) as server:
        with Coordinator(server.address, server.token, ca_cert=cert, retries=1, timeout=3) as anon:
            with pytest.raises(CoordinatorError):
                anon.list_experiments()
        cfg = ClientConfig(client_cert=client_cert, client_key=client_key)
        with Coordinator(server.address, server.token, ca_cert=cert, config=cfg) as c:
            assert c.whoami().role == 1
