"""A hostile target that reads files from native code, which the audit hook cannot see
(torch is imported here, as trusted code, before the guard is installed)."""

from __future__ import annotations

import torch


def native_read(payload: dict, emit) -> dict:
    """Read host files from native code (torch.from_file), which the audit hook cannot see."""
    found = {}
    for path in payload["paths"]:
        try:
            data = torch.from_file(path, size=payload.get("size", 64), dtype=torch.uint8)
            found[path] = bytes(data.tolist()).decode(errors="replace")
        except Exception as exc:  # noqa: BLE001 - the outcome is the report
            found[path] = f"{type(exc).__name__}: {exc}"[:200]
    return found
