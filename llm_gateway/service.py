"""The LLMGateway gRPC servicer: auth, validation, routing, accounting, status codes."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
from genesys.llm_gateway import upstream
from genesys.llm_gateway.auth import AuthError, Identity, TokenAuth
from genesys.llm_gateway.chat_input import (
    InvalidRequest,
    ModelNotFound,
    finish_reason,
    openai_payload,
    resolve_model,
)
from genesys.llm_gateway.pool import (
    DeadlineExceeded,
    ModelPool,
    NoReplica,
    QueueFull,
    Replica,
    State,
)
from genesys.llm_gateway.runtime import Gateway
from genesys.v1 import llm_gateway_pb2 as pb
from genesys.v1 import llm_gateway_pb2_grpc as pb_grpc

log = logging.getLogger("genesys.llm_gateway")

REPLICA_STATES = {
    State.STARTING: pb.REPLICA_STATE_STARTING,
    State.HEALTHY: pb.REPLICA_STATE_HEALTHY,
    State.UNHEALTHY: pb.REPLICA_STATE_UNHEALTHY,
    State.STOPPED: pb.REPLICA_STATE_STOPPED,
}


class Failed(Exception):
    """A request failed with a gRPC status; raised inside the servicer, turned into an abort."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def status_codes() -> Iterator[None]:
    """Translate the gateway's errors into gRPC status codes with their messages."""
    try:
        yield
    except InvalidRequest as exc:
        raise Failed(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from exc
    except ModelNotFound as exc:
        raise Failed(grpc.StatusCode.NOT_FOUND, str(exc)) from exc
    except QueueFull as exc:
        raise Failed(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from exc
    except (DeadlineExceeded, TimeoutError) as exc:
        raise Failed(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc) or "deadline exceeded") from exc
    except (NoReplica, upstream.RetryableError) as exc:
        raise Failed(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc
    except upstream.UpstreamRejected as exc:
        code = (grpc.StatusCode.RESOURCE_EXHAUSTED if exc.status == 429
                else grpc.StatusCode.INVALID_ARGUMENT)
        raise Failed(code, f"the model server refused the request: {exc}") from exc


def usage_of(body: dict) -> pb.TokenUsage:
    usage = body.get("usage") or {}
    return pb.TokenUsage(prompt_tokens=usage.get("prompt_tokens", 0),
                         completion_tokens=usage.get("completion_tokens", 0))


class LLMGatewayServicer(pb_grpc.LLMGatewayServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.auth = TokenAuth(gateway.config.auth)

    # -- helpers ---------------------------------------------------------------------------

    async def _identify(self, context: grpc.aio.ServicerContext) -> Identity:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        try:
            return self.auth.identify(metadata)
        except AuthError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            raise  # abort raises; this line only satisfies type checkers

    def _deadline(self, context: grpc.aio.ServicerContext) -> float:
        remaining = context.time_remaining()
        budget = self.gateway.config.request_timeout_s
        return time.monotonic() + (budget if remaining is None else min(budget, remaining))

    def _pool(self, inp: pb.ChatInput) -> ModelPool:
        with status_codes():
            return self.gateway.pools[resolve_model(self.gateway.config, inp)]

    @staticmethod
    def _payload(inp: pb.ChatInput, pool: ModelPool) -> dict:
        with status_codes():
            return openai_payload(inp, pool.served_name, pool.config)

    def _account(self, who: Identity, inp: pb.ChatInput, model: str, usage: pb.TokenUsage | None,
                 started: float, error: str = "") -> None:
        caller = who.name or inp.caller or "anonymous"
        self.gateway.ledger.record(
            caller, inp.experiment, model, error=bool(error),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )
        elapsed = time.monotonic() - started
        if model:
            self.gateway.metrics.latency.labels(model).observe(elapsed)
        log.info("event=chat caller=%s experiment=%s model=%s ms=%.1f prompt_tokens=%d "
                 "completion_tokens=%d error=%r", caller, inp.experiment or "-", model or "-",
                 elapsed * 1000, usage.prompt_tokens if usage else 0,
                 usage.completion_tokens if usage else 0, error)

    # -- RPCs ------------------------------------------------------------------------------

    async def Chat(self, request: pb.ChatRequest, context: grpc.aio.ServicerContext) -> pb.ChatResponse:
        who = await self._identify(context)
        started, model = time.monotonic(), ""
        try:
            pool = self._pool(request.input)
            model = pool.name
            payload = self._payload(request.input, pool)
            deadline = self._deadline(context)

            async def send(replica: Replica, timeout: float) -> dict:
                return await upstream.chat(self.gateway.http, replica.url, payload, timeout)

            with status_codes():
                async with pool.admitted(deadline):
                    body = await pool.call(self.gateway.config, deadline, send)
        except Failed as exc:
            self._account(who, request.input, model, None, started, str(exc))
            await context.abort(exc.code, str(exc))
        choice = (body.get("choices") or [{}])[0]
        usage = usage_of(body)
        self._account(who, request.input, model, usage, started)
        return pb.ChatResponse(
            text=(choice.get("message") or {}).get("content") or "", model=model,
            finish_reason=finish_reason(choice.get("finish_reason")), usage=usage,
            request_id=body.get("id") or uuid.uuid4().hex,
        )

    async def ChatStream(
        self, request: pb.ChatStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ChatStreamResponse]:
        who = await self._identify(context)
        started, model, usage = time.monotonic(), "", None
        try:
            pool = self._pool(request.input)
            model = pool.name
            payload = self._payload(request.input, pool)
            deadline = self._deadline(context)

            async def open_(replica: Replica, timeout: float):
                return replica, await upstream.open_stream(self.gateway.http, replica.url, payload, timeout)

            with status_codes():
                async with pool.admitted(deadline):
                    replica, response = await pool.call(self.gateway.config, deadline, open_)
                    replica.outstanding += 1
                    try:
                        async for chunk in self._relay(response, model, deadline):
                            if chunk.HasField("usage"):
                                usage = chunk.usage
                            yield chunk
                    finally:
                        replica.outstanding -= 1
                        await response.aclose()
        except Failed as exc:
            self._account(who, request.input, model, usage, started, str(exc))
            await context.abort(exc.code, str(exc))
        self._account(who, request.input, model, usage, started)

    async def _relay(self, response, model: str, deadline: float) -> AsyncIterator[pb.ChatStreamResponse]:
        """Turn upstream SSE chunks into stream messages; the last one has reason and usage."""
        request_id, reason, usage = "", pb.FINISH_REASON_UNSPECIFIED, pb.TokenUsage()
        try:
            async for event in upstream.stream_events(response):
                if time.monotonic() > deadline:
                    raise TimeoutError("deadline passed while streaming")
                request_id = request_id or event.get("id", "")
                if event.get("usage"):
                    usage = usage_of(event)
                for choice in event.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content") or ""
                    if choice.get("finish_reason"):
                        reason = finish_reason(choice["finish_reason"])
                    if delta:
                        yield pb.ChatStreamResponse(delta=delta, model=model, request_id=request_id)
        except httpx.HTTPError as exc:  # the replica died mid-stream: text was sent, no retry
            raise upstream.RetryableError(f"stream broke off: {exc!r}", dead=True) from exc
        yield pb.ChatStreamResponse(model=model, finish_reason=reason, usage=usage, request_id=request_id)

    async def ListModels(self, request: pb.ListModelsRequest, context) -> pb.ListModelsResponse:
        await self._identify(context)
        gateway = self.gateway
        return pb.ListModelsResponse(models=[
            pb.ModelInfo(
                name=name,
                roles=[pb.LLMRole.Value(f"LLM_ROLE_{r.upper()}") for r in gateway.roles_of(name)],
                max_context=pool.config.max_context, max_concurrency=pool.config.max_concurrency,
                queue_size=pool.config.queue_size, in_flight=pool.in_flight, queued=pool.queued,
                replicas=[
                    pb.ReplicaInfo(url=r.url, state=REPLICA_STATES[r.state], outstanding=r.outstanding,
                                   launched=r.launched, last_error=r.last_error)
                    for r in pool.replicas
                ],
            )
            for name, pool in gateway.pools.items()
        ])

    async def GetUsage(self, request: pb.GetUsageRequest, context) -> pb.GetUsageResponse:
        who = await self._identify(context)
        caller = request.caller
        if not who.is_admin:
            if caller and caller != who.name:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    "a worker token may read only its own usage")
            caller = who.name
        rows = self.gateway.ledger.query(caller, request.experiment)
        return pb.GetUsageResponse(records=[
            pb.UsageRecord(caller=c, experiment=e, model=m, requests=t.requests, errors=t.errors,
                           prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens)
            for (c, e, m), t in rows
        ])
