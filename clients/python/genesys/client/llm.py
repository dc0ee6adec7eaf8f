"""Python SDK for the LLM gateway: `LLM(address).chat(...)`, `.stream(...)`, `.chat_json(...)`.

    from genesys.client.llm import LLM
    llm = LLM("127.0.0.1:50061", caller="designer-1", experiment="exp1")
    print(llm.chat("Name a sorting algorithm.", role="proposer").text)
    plan = llm.chat_json("Plan the next unit.", schema={"type": "object", ...})

The address and token default to the GENESYS_LLM_ADDRESS and GENESYS_LLM_TOKEN env vars (or the
file GENESYS_LLM_TOKEN_FILE names, as the deploy files mount it); with
a CA bundle (tls_ca, else GENESYS_LLM_CA_CERT) the connection is TLS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from genesys.v1 import llm_gateway_pb2 as pb
from genesys.v1 import llm_gateway_pb2_grpc as pb_grpc

DEFAULT_ADDRESS = "127.0.0.1:50061"
AUTHORS = {"system": pb.ChatMessage.AUTHOR_SYSTEM, "user": pb.ChatMessage.AUTHOR_USER,
           "assistant": pb.ChatMessage.AUTHOR_ASSISTANT}
Messages = str | Sequence[dict[str, str]]


class LLMError(RuntimeError):
    """The gateway refused or failed a request; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ChatResult:
    text: str
    model: str
    finish_reason: str  # stop | length | other | unspecified
    prompt_tokens: int
    completion_tokens: int
    request_id: str


def _messages(messages: Messages, system: str | None) -> list[pb.ChatMessage]:
    items = [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)
    if system is not None:
        items.insert(0, {"role": "system", "content": system})
    out = []
    for i, item in enumerate(items):
        if item.get("role") not in AUTHORS:
            raise ValueError(f"messages[{i}].role must be one of {sorted(AUTHORS)}, got {item.get('role')!r}")
        out.append(pb.ChatMessage(author=AUTHORS[item["role"]], content=item.get("content", "")))
    return out


def _reason(value: int) -> str:
    return pb.FinishReason.Name(value).removeprefix("FINISH_REASON_").lower()


def gateway_token() -> str | None:
    """GENESYS_LLM_TOKEN, else the contents of the file GENESYS_LLM_TOKEN_FILE names."""
    token = os.environ.get("GENESYS_LLM_TOKEN")
    path = os.environ.get("GENESYS_LLM_TOKEN_FILE")
    if not token and path:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    return token or None


class LLM:
    """A connection to the gateway. Thread-safe; reuse one per process."""

    def __init__(
        self, address: str | None = None, *, token: str | None = None, caller: str = "",
        experiment: str = "", timeout: float = 300.0, tls_ca: str | None = None,
    ) -> None:
        self.address = address or os.environ.get("GENESYS_LLM_ADDRESS", DEFAULT_ADDRESS)
        token = token if token is not None else gateway_token()
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.caller, self.experiment, self.timeout = caller, experiment, timeout
        tls_ca = tls_ca or os.environ.get("GENESYS_LLM_CA_CERT")
        if tls_ca:
            with open(tls_ca, "rb") as f:
                self._channel = grpc.secure_channel(self.address, grpc.ssl_channel_credentials(f.read()))
        else:
            self._channel = grpc.insecure_channel(self.address)
        self._stub = pb_grpc.LLMGatewayStub(self._channel)

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _input(
        self, messages: Messages, *, model: str | None = None, role: str | None = None,
        system: str | None = None, temperature: float | None = None, top_p: float | None = None,
        max_tokens: int = 0, stop: Sequence[str] = (), seed: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> pb.ChatInput:
        inp = pb.ChatInput(
            messages=_messages(messages, system), model=model or "", max_tokens=max_tokens,
            stop=list(stop), caller=self.caller, experiment=self.experiment,
            json_schema=json.dumps(json_schema) if json_schema is not None else "",
        )
        if role:
            inp.role = pb.LLMRole.Value(f"LLM_ROLE_{role.upper()}")
        for key, value in (("temperature", temperature), ("top_p", top_p), ("seed", seed)):
            if value is not None:
                setattr(inp, key, value)
        return inp

    def _call(self, method, request, timeout: float | None):
        try:
            return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise LLMError(exc.code(), exc.details() or "") from exc

    def chat(self, messages: Messages, *, timeout: float | None = None, **options: Any) -> ChatResult:
        """One completion. options: model, role, system, temperature, top_p, max_tokens,
        stop, seed, json_schema (a dict: constrain the output to it)."""
        request = pb.ChatRequest(input=self._input(messages, **options))
        r = self._call(self._stub.Chat, request, timeout)
        return ChatResult(r.text, r.model, _reason(r.finish_reason), r.usage.prompt_tokens,
                          r.usage.completion_tokens, r.request_id)

    def stream(self, messages: Messages, *, timeout: float | None = None, **options: Any) -> Iterator[str]:
        """Yield the completion's text as it is generated (same options as chat)."""
        request = pb.ChatStreamRequest(input=self._input(messages, **options))
        responses = self._call(self._stub.ChatStream, request, timeout)
        try:
            for chunk in responses:
                if chunk.delta:
                    yield chunk.delta
        except grpc.RpcError as exc:
            raise LLMError(exc.code(), exc.details() or "") from exc

    def chat_json(self, messages: Messages, schema: dict[str, Any], **options: Any) -> Any:
        """A completion constrained to a JSON schema, parsed (and validated when jsonschema is installed)."""
        result = self.chat(messages, json_schema=schema, **options)
        try:
            value = json.loads(result.text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the model's output is not JSON (finish_reason {result.finish_reason}): "
                             f"{result.text[:200]!r}") from exc
        try:
            import jsonschema
        except ImportError:  # the base install has no jsonschema; the gateway constrained the output
            return value
        jsonschema.validate(value, schema)
        return value

    def models(self, timeout: float | None = None) -> list[pb.ModelInfo]:
        return list(self._call(self._stub.ListModels, pb.ListModelsRequest(), timeout).models)

    def usage(self, caller: str = "", experiment: str = "", timeout: float | None = None) -> list[pb.UsageRecord]:
        request = pb.GetUsageRequest(caller=caller, experiment=experiment)
        return list(self._call(self._stub.GetUsage, request, timeout).records)
