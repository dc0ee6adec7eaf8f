"""The agent's gRPC link to the coordinator: bearer token, retries with backoff, and a
clear split between transient failures (retry) and fatal ones (bad token, bad address)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
from genesys.v1 import evolution_pb2_grpc, scheduler_pb2_grpc
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.ABORTED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       grpc.StatusCode.CANCELLED})
AUTH = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
MAX_MESSAGE = 64 * 1024 * 1024


class AgentFatal(RuntimeError):
    """The agent cannot go on (refused token, unreachable coordinator); exit non-zero."""


def code_of(err: BaseException) -> grpc.StatusCode | None:
    return err.code() if isinstance(err, grpc.RpcError) else None


def is_transient(err: BaseException) -> bool:
    return code_of(err) in TRANSIENT


def explain(err: BaseException, address: str) -> str:
    """A one-line, user-facing reason for a failed call."""
    code = code_of(err)
    detail = err.details() if isinstance(err, grpc.RpcError) else str(err)
    if code in AUTH:
        return (f"the coordinator at {address} refused the token ({code.name}: {detail}); "
                "check --token / GENESYS_TOKEN")
    if code == grpc.StatusCode.UNAVAILABLE:
        return (f"cannot reach the coordinator at {address} ({detail}); check --coordinator "
                "and that the coordinator is running")
    return f"{code.name if code else type(err).__name__}: {detail}"


class Link:
    """Stubs of the scheduler and evolution services over one channel."""

    def __init__(self, address: str, token: str, tls_ca: str | None = None,
                 stop: threading.Event | None = None):
        self.address = address
        self._metadata = (("authorization", f"Bearer {token}"),)
        options = [("grpc.max_receive_message_length", MAX_MESSAGE),
                   ("grpc.max_send_message_length", MAX_MESSAGE),
                   ("grpc.keepalive_time_ms", 30_000),
                   # reconnect soon after a coordinator restart (gRPC's default backs off to 2 min)
                   ("grpc.initial_reconnect_backoff_ms", 500),
                   ("grpc.max_reconnect_backoff_ms", 5_000)]
        if tls_ca is not None:
            with open(tls_ca, "rb") as f:
                creds = grpc.ssl_channel_credentials(f.read())
            self._channel = grpc.secure_channel(address, creds, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self.scheduler = scheduler_pb2_grpc.SchedulerServiceStub(self._channel)
        self.evolution = evolution_pb2_grpc.EvolutionServiceStub(self._channel)
        self.stop = stop or threading.Event()

    def call(self, method: Callable[..., Any], request: Any, *, timeout: float = 20.0,
             retry_for: float | None = 0.0, on_retry: Callable[[BaseException], None] | None = None) -> Any:
        """Call a stub method; transient failures are retried with jittered exponential
        backoff for ``retry_for`` seconds (None: until it works or the agent stops)."""
        if retry_for == 0.0:
            return method(request, timeout=timeout, metadata=self._metadata)

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                on_retry(state.outcome.exception())

        def stopped(state: RetryCallState) -> bool:
            return self.stop.is_set()

        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(initial=0.5, max=10.0),
            stop=(stop_never if retry_for is None else stop_after_delay(retry_for)) | stopped,
            before_sleep=before_sleep, reraise=True, sleep=self._sleep)
        return retrying(method, request, timeout=timeout, metadata=self._metadata)

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def close(self) -> None:
        self._channel.close()
