"""The design job's checkpoint: an append-only journal of every LLM answer and checker verdict.

A resumed job re-runs the pipeline from the start; each LLM call and each check is answered
from the journal while its key (what was asked) matches the entry at that position, so no
call is repeated and the run continues exactly where it stopped. The first mismatch (a
changed prompt template, say) ends the replay: later entries are dropped and live calls
take over. Each entry is flushed and fsynced before the pipeline goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def key_of(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


class Journal:
    """``path`` None keeps nothing (a one-off run)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.entries: list[dict] = []
        self.position = 0
        self.replayed = 0
        if self.path and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    self.entries.append(json.loads(line))
                except ValueError:
                    break  # a torn last line from a kill: everything before it is good

    @property
    def resumed(self) -> bool:
        return bool(self.entries)

    def replay(self, kind: str, key: str) -> dict | None:
        """The recorded value for this call if the journal holds it at this position."""
        if self.position < len(self.entries):
            entry = self.entries[self.position]
            if entry.get("kind") == kind and entry.get("key") == key:
                self.position += 1
                self.replayed += 1
                return entry["value"]
            self._truncate()
        return None

    def record(self, kind: str, key: str, value: Any) -> None:
        entry = {"kind": kind, "key": key, "value": value}
        self.entries.append(entry)
        self.position = len(self.entries)
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(entry, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def _truncate(self) -> None:
        del self.entries[self.position:]
        if self.path:
            self.path.write_text("".join(json.dumps(e, default=str) + "\n" for e in self.entries))
