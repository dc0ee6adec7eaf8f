"""Checking a ChatInput and turning it into an OpenAI chat-completions payload."""

from __future__ import annotations

import json
from typing import Any

from genesys.llm_gateway.config import GatewayConfig, ModelConfig
from genesys.v1 import llm_gateway_pb2 as pb
from jsonschema import SchemaError
from jsonschema.validators import validator_for

AUTHORS = {
    pb.ChatMessage.AUTHOR_SYSTEM: "system",
    pb.ChatMessage.AUTHOR_USER: "user",
    pb.ChatMessage.AUTHOR_ASSISTANT: "assistant",
}
FINISH_REASONS = {"stop": pb.FINISH_REASON_STOP, "length": pb.FINISH_REASON_LENGTH}


class InvalidRequest(ValueError):
    pass


class ModelNotFound(LookupError):
    pass


def role_name(role: int) -> str:
    return pb.LLMRole.Name(role).removeprefix("LLM_ROLE_").lower()


def resolve_model(config: GatewayConfig, inp: pb.ChatInput) -> str:
    """The configured model a request is for: by name, else by designer role."""
    if inp.model:
        if inp.model not in config.models:
            raise ModelNotFound(f"unknown model {inp.model!r} (available: {', '.join(sorted(config.models))})")
        return inp.model
    if inp.role != pb.LLM_ROLE_UNSPECIFIED:
        role = role_name(inp.role)
        if role not in config.roles:
            raise ModelNotFound(f"no model is mapped to role {role!r} (config [roles])")
        return config.roles[role]
    if len(config.models) == 1:
        return next(iter(config.models))
    raise InvalidRequest("name a model or a role (several models are served)")


def parse_schema(text: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"json_schema is not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise InvalidRequest("json_schema must be a JSON object")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(f"json_schema is not a valid JSON Schema: {exc.message}") from exc
    return schema


def openai_payload(inp: pb.ChatInput, served_name: str, model: ModelConfig) -> dict[str, Any]:
    """Validate the request against the model's limits and build the upstream payload."""
    if not inp.messages:
        raise InvalidRequest("messages: at least one message is required")
    messages = []
    for i, message in enumerate(inp.messages):
        if message.author not in AUTHORS:
            raise InvalidRequest(f"messages[{i}].author must be SYSTEM, USER or ASSISTANT")
        messages.append({"role": AUTHORS[message.author], "content": message.content})
    if inp.max_tokens < 0:
        raise InvalidRequest(f"max_tokens must be >= 0, got {inp.max_tokens}")
    max_tokens = inp.max_tokens or model.default_max_tokens
    if max_tokens >= model.max_context:
        raise InvalidRequest(
            f"max_tokens {max_tokens} does not fit model {served_name!r}'s context of "
            f"{model.max_context} tokens"
        )
    payload: dict[str, Any] = {"model": served_name, "messages": messages, "max_tokens": max_tokens}
    if inp.HasField("temperature"):
        if not 0.0 <= inp.temperature <= 2.0:
            raise InvalidRequest(f"temperature must be within [0, 2], got {inp.temperature}")
        payload["temperature"] = inp.temperature
    if inp.HasField("top_p"):
        if not 0.0 < inp.top_p <= 1.0:
            raise InvalidRequest(f"top_p must be within (0, 1], got {inp.top_p}")
        payload["top_p"] = inp.top_p
    if inp.HasField("seed"):
        payload["seed"] = inp.seed
    if inp.stop:
        payload["stop"] = list(inp.stop)
    schema = parse_schema(inp.json_schema)
    if schema is not None:
        payload["response_format"] = {
            "type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True},
        }
    return payload


def finish_reason(value: str | None) -> int:
    if not value:
        return pb.FINISH_REASON_UNSPECIFIED
    return FINISH_REASONS.get(value, pb.FINISH_REASON_OTHER)
