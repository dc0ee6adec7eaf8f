"""Calls to one OpenAI-compatible server (vLLM): chat completions, streamed or not, and health.

Errors are sorted for the router: `RetryableError` (connection failures, timeouts, 5xx)
may go to another replica; `UpstreamRejected` (4xx) is the caller's fault and is never retried.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


class RetryableError(Exception):
    """The replica failed (not the request); `dead` when it could not be reached at all."""

    def __init__(self, message: str, *, dead: bool) -> None:
        super().__init__(message)
        self.dead = dead


class UpstreamRejected(Exception):
    """The server refused the request (4xx); the message is the server's own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or f"HTTP {response.status_code}"
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        return str(err.get("message") or err.get("detail") or err)
    return str(err)


async def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code < 400:
        return
    await response.aread()
    message = _error_message(response)
    if response.status_code >= 500:
        raise RetryableError(f"{url} answered {response.status_code}: {message}", dead=False)
    raise UpstreamRejected(response.status_code, message)


async def chat(client: httpx.AsyncClient, url: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    try:
        response = await client.post(f"{url}/v1/chat/completions", json=payload, timeout=timeout)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise RetryableError(f"{url} unreachable: {exc!r}", dead=True) from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{url} failed: {exc!r}", dead=True) from exc
    await _check_status(response, url)
    return response.json()


async def open_stream(
    client: httpx.AsyncClient, url: str, payload: dict[str, Any], timeout: float
) -> httpx.Response:
    """Send a streaming request and return the response once its status is known to be OK."""
    request = client.build_request(
        "POST", f"{url}/v1/chat/completions", json={**payload, "stream": True,
                                                    "stream_options": {"include_usage": True}},
        timeout=timeout,
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        raise RetryableError(f"{url} unreachable: {exc!r}", dead=True) from exc
    try:
        await _check_status(response, url)
    except Exception:
        await response.aclose()
        raise
    return response


async def stream_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON chunks of a server-sent-events chat stream, until `[DONE]`."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


async def healthy(client: httpx.AsyncClient, url: str, path: str, timeout: float = 2.0) -> tuple[bool, str]:
    try:
        response = await client.get(f"{url}{path}", timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"health check failed: {exc!r}"
    if response.status_code != 200:
        return False, f"health check answered {response.status_code}"
    return True, ""
