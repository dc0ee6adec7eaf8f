"""Run the gateway: gRPC server (LLMGateway + health + reflection) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from genesys.llm_gateway.config import GatewayConfig
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


async def serve(config: GatewayConfig) -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting, drain briefly, stop vLLM processes."""
    gateway = Gateway(config)
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ])
    pb_grpc.add_LLMGatewayServicer_to_server(LLMGatewayServicer(gateway), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(config.listen)
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
    log.info("event=gateway_listening listen=%s models=%s metrics=%s", config.listen,
             ",".join(gateway.pools), config.metrics_listen or "off")
    try:
        await stop.wait()
    finally:
        log.info("event=gateway_stopping")
        await health.enter_graceful_shutdown()
        await server.stop(grace=5)
        await gateway.stop()


def run(config: GatewayConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s level=%(levelname)s %(message)s")
    asyncio.run(serve(config))
