"""Structured agent logs: one ``key=value`` line per event on stderr."""

from __future__ import annotations

import sys
import threading
import time

_lock = threading.Lock()


def _fmt(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def log(event: str, level: str = "info", **fields: object) -> None:
    """Write ``ts=... level=... event=... k=v ...`` (None values are left out)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1000):03d}Z"
    parts = [f"ts={stamp}", f"level={level}", f"event={event}"]
    parts += [f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None]
    with _lock:
        print(" ".join(parts), file=sys.stderr, flush=True)
