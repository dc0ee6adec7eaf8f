"""Reading a model's answer: JSON (bare, fenced or embedded in prose) and code blocks.

Constrained output makes the first path the usual one; the others are the fallback for
servers (or models) that ignore the schema, before a repair prompt is spent.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


class ParseError(ValueError):
    """The answer holds no value matching the expected schema; the message says why."""


def _validate(value: Any, schema: dict | None) -> None:
    if schema is None:
        return
    import jsonschema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the answer"
        raise ParseError(f"{where}: {exc.message[:300]}") from None


def _candidates(text: str) -> list[Any]:
    """JSON values found in the text, most likely first: the whole text, fenced blocks,
    then each embedded object."""
    found: list[Any] = []
    stripped = text.strip()
    try:
        found.append(json.loads(stripped))
    except ValueError:
        pass
    for _, body in FENCE.findall(text):
        try:
            found.append(json.loads(body.strip()))
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        found.append(value)
    return found


def parse_json(text: str, schema: dict | None = None) -> Any:
    """The first JSON value in ``text`` that satisfies ``schema``."""
    candidates = _candidates(text)
    if not candidates:
        raise ParseError("no JSON object found in the answer")
    error: ParseError | None = None
    for value in candidates:
        try:
            _validate(value, schema)
            return value
        except ParseError as exc:
            error = error or exc
    raise error


def code_blocks(text: str) -> list[str]:
    """Fenced code blocks (python or untagged), else the whole text when it is Python."""
    blocks = [body for tag, body in FENCE.findall(text) if tag.lower() in ("", "python", "py")]
    if blocks:
        return blocks
    try:
        ast.parse(text)
    except SyntaxError:
        return []
    return [text]


def parse_code_answer(text: str, schema: dict) -> dict:
    """A coder's answer: the JSON object asked for, or a fenced code block standing in for
    its ``code`` field (with the prose around it as the analysis)."""
    try:
        return parse_json(text, schema)
    except ParseError as exc:
        blocks = [b for b in code_blocks(text) if "class " in b]
        if not blocks:
            raise exc from None
        prose = FENCE.sub("", text).strip()
        value = {"analysis": prose[:2000], "code": blocks[-1]}
        _validate(value, schema)
        return value
