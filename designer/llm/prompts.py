"""Prompt templates: one jinja2 file per role and stage, ``designer/prompts/<role>/<stage>.j2``.

Each rendered prompt is recorded with its template's version (a digest of the file), so a
trace says exactly which wording produced an answer.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import jinja2

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPT_DIR), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, autoescape=False)


@functools.cache
def version(role: str, stage: str) -> str:
    """``role/stage@digest`` of the template file."""
    text = (PROMPT_DIR / role / f"{stage}.j2").read_bytes()
    return f"{role}/{stage}@{hashlib.sha256(text).hexdigest()[:10]}"


def render(role: str, stage: str, **context: object) -> str:
    """The prompt of ``role`` at ``stage``; a missing variable is an error, not a blank."""
    return _environment().get_template(f"{role}/{stage}.j2").render(**context).strip()
