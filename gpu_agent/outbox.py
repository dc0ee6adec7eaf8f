"""Finished-job reports kept on disk until the coordinator has them.

Every report (complete / fail / release of a job under one lease) is written atomically to
``<work_dir>/outbox/<job_id>-<fencing_token>.json`` before the agent first tries to send
it, and removed only after the coordinator answered (accepted, already completed, or
refused as stale). A crash or a coordinator outage therefore loses nothing, and the
coordinator's fencing tokens + idempotent CompleteJob make a resend harmless.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Report:
    job_id: str
    fencing_token: int
    action: str  # complete | fail | release
    kind: str = ""  # VERIFY | DESIGN
    design_id: str = ""
    result: dict = field(default_factory=dict)  # JobResult as a JSON dict (complete)
    submission: dict = field(default_factory=dict)  # SubmitDesignRequest as JSON (DESIGN)
    error: str = ""  # fail / release reason
    retryable: bool = True
    failure_kind: str = ""  # fail: "design" | "infrastructure" | "" (not said)
    attempts: int = 0

    @property
    def key(self) -> str:
        return f"{self.job_id}-{self.fencing_token}"


class Outbox:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.changed = threading.Event()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def put(self, report: Report) -> None:
        path = self._path(report.key)
        tmp = path.with_suffix(".tmp")
        with self._lock:
            with open(tmp, "w") as f:
                json.dump(asdict(report), f)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        self.changed.set()

    def pending(self) -> list[Report]:
        with self._lock:
            files = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
            reports = []
            for path in files:
                try:
                    reports.append(Report(**json.loads(path.read_text())))
                except (ValueError, TypeError, OSError):
                    path.rename(path.with_suffix(".bad"))  # keep for a human, stop retrying
            return reports

    def done(self, report: Report) -> None:
        with self._lock:
            self._path(report.key).unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.json")))
