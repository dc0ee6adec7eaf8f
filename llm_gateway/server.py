"""Run the gateway: gRPC server (LLMGateway, KnowledgeService, health, reflection; TLS when
the config names a certificate) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import grpc
from genesys.llm_gateway.auth import TokenAuth
from genesys.llm_gateway.config import GatewayConfig, TlsConfig
from genesys.llm_gateway.runtime import Gateway
from genesys.llm_gateway.service import LLMGatewayServicer
from genesys.v1 import llm_gateway_pb2 as pb
from genesys.v1 import llm_gateway_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

log = logging.getLogger("genesys.llm_gateway")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["LLMGateway"].full_name
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def credentials(tls: TlsConfig) -> grpc.ServerCredentials | None:
    """Server TLS credentials from the config's PEM files; None: plaintext."""
    if not tls.cert:
        return None
    pair = [(Path(tls.key).read_bytes(), Path(tls.cert).read_bytes())]
    if tls.client_ca:
        return grpc.ssl_server_credentials(pair, Path(tls.client_ca).read_bytes(), require_client_auth=True)
    return grpc.ssl_server_credentials(pair)


def knowledge_servicer(config: GatewayConfig):
    """The KnowledgeService on the config's index (opened in the background), or None when
    it is off or its extra is not installed."""
    if not config.knowledge.enabled:
        return None
    try:
        from genesys.llm_gateway.knowledge.engine import open_engine
        from genesys.llm_gateway.knowledge.service import KnowledgeServicer
    except ImportError as exc:
        log.warning("event=knowledge_disabled reason=%r hint=\"pip install 'genesys[knowledge]'\"", str(exc))
        return None

    def opened():
        try:
            engine = open_engine(config.knowledge, config.knowledge_path)
        except Exception as exc:
            log.error("event=knowledge_unavailable error=%r", str(exc))
            raise
        log.info("event=knowledge_ready backend=%s embedder=%s lexical=%s", engine.store.uri,
                 engine.embedder.name, engine.store.lexical)
        return engine

    return KnowledgeServicer(opened, TokenAuth(config.auth))


async def serve(config: GatewayConfig) -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting, drain briefly, stop vLLM processes."""
    gateway = Gateway(config)
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ])
    pb_grpc.add_LLMGatewayServicer_to_server(LLMGatewayServicer(gateway), server)
    services = [SERVICE_NAME]
    knowledge = knowledge_servicer(config)
    if knowledge is not None:
        from genesys.llm_gateway.knowledge.service import SERVICE_NAME as KNOWLEDGE_SERVICE
        from genesys.v1 import knowledge_pb2_grpc

        knowledge_pb2_grpc.add_KnowledgeServiceServicer_to_server(knowledge, server)
        services.append(KNOWLEDGE_SERVICE)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    creds = credentials(config.tls)
    port = (server.add_secure_port(config.listen, creds) if creds
            else server.add_insecure_port(config.listen))
    if port == 0:
        raise OSError(f"cannot listen on {config.listen}")
    if config.metrics_listen:
        host, _, metrics_port = config.metrics_listen.rpartition(":")
        start_http_server(int(metrics_port), addr=host, registry=gateway.metrics.registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await gateway.start()
    await server.start()
    for name in ("", SERVICE_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    if knowledge is not None:  # SERVING once its index is open (NOT_SERVING if it cannot be)
        def knowledge_health(opened) -> None:
            status = (health_pb2.HealthCheckResponse.NOT_SERVING if opened.exception()
                      else health_pb2.HealthCheckResponse.SERVING)
            asyncio.run_coroutine_threadsafe(health.set(KNOWLEDGE_SERVICE, status), loop)
        await health.set(KNOWLEDGE_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        knowledge.engine.add_done_callback(knowledge_health)
    log.info("event=gateway_listening listen=%s models=%s metrics=%s tls=%s knowledge=%s", config.listen,
             ",".join(gateway.pools), config.metrics_listen or "off", "on" if creds else "off",
             "on" if knowledge else "off")
    try:
        await stop.wait()
    finally:
        log.info("event=gateway_stopping")
        await health.enter_graceful_shutdown()
        await server.stop(grace=5)
        await gateway.stop()
        if knowledge is not None:
            knowledge.close()


def run(config: GatewayConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s level=%(levelname)s %(message)s")
    asyncio.run(serve(config))
