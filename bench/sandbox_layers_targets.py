"""A bare target for bench/sandbox_layers.py: the layers' own start-up cost."""

from __future__ import annotations


def echo(payload: dict, emit) -> str:
    return "ok"
