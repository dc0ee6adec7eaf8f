"""Which model answers a role's call: the experiment's bindings, several per role allowed.

With one binding per role (the default) the mapping is fixed. With several, a UCB1 bandit
picks per call, rewarding what the role is for (an accepted proposal, a passed unit, a
parsed answer) per thousand tokens spent, so a cheap model that does the job wins over a
big one that does it no better. Without a binding the call names only the role and the
gateway's own [roles] mapping decides.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

EXPLORATION = 0.5


@dataclass(frozen=True)
class Binding:
    role: str
    model: str = ""  # "" = the gateway's model for the role
    temperature: float | None = None
    max_tokens: int = 0


@dataclass
class Record:
    calls: int = 0
    successes: float = 0.0
    tokens: int = 0

    def rate(self) -> float:
        """Successes per thousand tokens (with one free token-thousand so 0/0 is 0)."""
        return self.successes / (self.tokens / 1000.0 + 1.0)


@dataclass
class ModelChooser:
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)  # "role/model" -> record
    state_path: Path | None = None

    @classmethod
    def from_config(cls, roles: list[dict], state_path: str | Path | None = None) -> ModelChooser:
        """From ExperimentConfig.llm_roles entries {"role", "model", "temperature", "max_tokens"}."""
        bindings: dict[str, list[Binding]] = {}
        for entry in roles or []:
            role = str(entry.get("role") or "").lower()
            if not role:
                continue
            bindings.setdefault(role, []).append(Binding(
                role, str(entry.get("model") or ""), entry.get("temperature") or None,
                int(entry.get("max_tokens") or 0)))
        chooser = cls(bindings, state_path=Path(state_path) if state_path else None)
        if chooser.state_path and chooser.state_path.exists():
            try:
                saved = json.loads(chooser.state_path.read_text())
                chooser.records = {k: Record(**v) for k, v in saved.items()}
            except (ValueError, TypeError):
                chooser.records = {}
        return chooser

    def choose(self, role: str) -> Binding:
        options = self.bindings.get(role) or [Binding(role)]
        if len(options) == 1:
            return options[0]
        total = sum(self._record(role, b.model).calls for b in options)
        for b in options:  # every model once before any is judged
            if self._record(role, b.model).calls == 0:
                return b

        def score(b: Binding) -> float:
            r = self._record(role, b.model)
            return r.rate() + EXPLORATION * math.sqrt(math.log(total) / r.calls)

        return max(options, key=score)

    def spent(self, role: str, model: str, tokens: int) -> None:
        r = self._record(role, model)
        r.calls += 1
        r.tokens += tokens

    def reward(self, role: str, model: str, success: bool) -> None:
        if success:
            self._record(role, model).successes += 1
        self._save()

    def _record(self, role: str, model: str) -> Record:
        return self.records.setdefault(f"{role}/{model}", Record())

    def _save(self) -> None:
        if self.state_path:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            data = {k: vars(v) for k, v in self.records.items()}
            partial = self.state_path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(data, sort_keys=True))
            os.replace(partial, self.state_path)  # jobs of one agent share the file
