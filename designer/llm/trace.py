"""What an LLM designer did, as the dict of a genesys.v1.DesignTrace (json_format.ParseDict)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

AGENT = "genesys.designer.llm"


@dataclass
class Trace:
    designer: str
    operation: str
    proposal: str = ""
    review: str = ""
    review_rating: float = 0.0
    prompts: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    attempts: int = 0  # implementation attempts (coder calls that produced a candidate)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    check_report: dict | None = None
    abandoned_reason: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def add_call(self, record: dict) -> None:
        self.prompts.append(record)
        self.prompt_tokens += int(record.get("prompt_tokens") or 0)
        self.completion_tokens += int(record.get("completion_tokens") or 0)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def note(self, text: str) -> None:
        self.notes.append(text)

    def to_dict(self) -> dict:
        prompts = [{k: v for k, v in p.items() if k in PROMPT_FIELDS} for p in self.prompts]
        return {
            "operation": f"DESIGN_OPERATION_{self.operation.upper()}",
            "proposal": self.proposal, "review": self.review, "review_rating": self.review_rating,
            "prompts": prompts, "notes": self.notes, "agent": AGENT, "attempts": self.attempts,
            "designer": self.designer, "prompt_tokens": str(self.prompt_tokens),
            "completion_tokens": str(self.completion_tokens),
            "check_report_json": json.dumps(self.check_report, default=str) if self.check_report else "",
            "abandoned_reason": self.abandoned_reason,
            "metadata_json": json.dumps(self.metadata, default=str),
        }


PROMPT_FIELDS = ("role", "model", "prompt", "response", "prompt_tokens", "completion_tokens",
                 "latency_seconds", "stage", "attempt", "unit")
