"""Everything one LLM design job works with: the parents, donors, siblings, the session,
the trace, and the checker (its verdicts journaled like LLM answers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genesys.design import Design

from ..job import failure, passed, report_dict
from .journal import Journal, key_of
from .session import Session
from .settings import DesignerSettings
from .trace import Trace

Check = Callable[[Design], Any]


@dataclass
class DesignContext:
    operation: str
    parents: list[Design]
    parent_ids: list[str]
    library: list[Design]
    settings: DesignerSettings
    session: Session
    trace: Trace
    journal: Journal
    checker: Check
    emit: Callable[[dict], None]
    seed: int = 0
    experiment: str = ""
    job_id: str = ""
    known: set[str] = field(default_factory=set)
    results: list[dict] = field(default_factory=list)  # per parent: {rung: {metric: value}}
    siblings: list[dict] = field(default_factory=list)  # {name, proposal, review, rating}
    knowledge: Any = None  # genesys.client.knowledge.Knowledge, or None
    checks: int = 0  # checker runs (a design seen again in this job reuses its verdict)
    verdicts: dict[str, dict] = field(default_factory=dict)

    def parent_metrics(self, index: int) -> dict:
        return self.results[index] if index < len(self.results) else {}

    def check(self, design: Design) -> dict:
        """{"ok", "failure", "report"} for the design; a resumed job reads the verdict from
        the journal instead of checking again, and a design checked before in this job
        keeps its verdict."""
        report = self.verdicts.get(design.digest)
        if report is None:
            key = key_of("check", design.digest)
            report = self.journal.replay("check", key)
            if report is None:
                self.emit({"stage": "check", "message": f"checking {design.name}"})
                report = report_dict(self.checker(design))
                self.journal.record("check", key, report)
            self.verdicts[design.digest] = report
            self.checks += 1
        self.trace.check_report = report
        ok = passed(report)
        self.emit({"stage": "checked", "message": f"{design.name}: "
                   + ("valid" if ok else failure(report)[:200])})
        return {"ok": ok, "failure": "" if ok else failure(report), "report": report}
