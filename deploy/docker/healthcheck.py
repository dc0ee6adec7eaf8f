"""Container health check: `python3 healthcheck.py grpc HOST:PORT` or `http URL`.

grpc: the standard gRPC health service answers SERVING (TLS with GENESYS_CA_CERT unless
GENESYS_TLS=off). http: the URL answers 200. Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def grpc_ok(address: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if os.environ.get("GENESYS_TLS", "on") == "off":
        channel = grpc.insecure_channel(address)
    else:
        with open(os.environ["GENESYS_CA_CERT"], "rb") as f:
            credentials = grpc.ssl_channel_credentials(f.read())
        # the certificate names the service, the probe connects to loopback
        options = [("grpc.ssl_target_name_override", os.environ.get("GENESYS_TLS_NAME", "localhost"))]
        channel = grpc.secure_channel(address, credentials, options)
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310 (local probe)
        return reply.status == 200


def main() -> int:
    kind, target = sys.argv[1], sys.argv[2]
    try:
        ok = grpc_ok(target) if kind == "grpc" else http_ok(target)
    except Exception as e:  # any failure is "unhealthy", said in one line
        print(f"unhealthy: {e}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
