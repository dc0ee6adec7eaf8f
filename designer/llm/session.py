"""One design's conversation with the gateway: templated prompts, constrained answers with
parse-and-repair, retries of transient gateway errors, token budgets, the journal (resume
without repeating a call) and a PromptRecord in the trace for every call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import tenacity
from genesys.client.llm import LLM, LLMError
from genesys.v1 import llm_gateway_pb2 as pb

from . import prompts
from .journal import Journal, key_of
from .models import ModelChooser
from .parse import ParseError, parse_json
from .settings import DesignerSettings
from .trace import Trace

CHARS_PER_TOKEN = 3  # prompt size estimate for fitting max_tokens (real text: ~4)
MIN_COMPLETION = 64
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED})
Emit = Callable[[dict], None]
Parser = Callable[[str, dict], Any]


class Abandoned(Exception):
    """The design job gives up; ``reason`` goes into the trace's abandoned_reason. ``kind``
    says whose fault it is: "design" (the search found nothing), "infrastructure" (the
    gateway failed; another attempt may do better), "budget" (tokens spent) or "config"
    (the experiment's designer settings are wrong)."""

    def __init__(self, reason: str, kind: str = "design"):
        super().__init__(reason)
        self.reason, self.kind = reason, kind


@dataclass
class Answer:
    value: Any
    text: str
    model: str
    role: str


class Session:
    def __init__(self, llm: LLM, chooser: ModelChooser, journal: Journal, trace: Trace,
                 settings: DesignerSettings, emit: Emit, *, seed: int = 0,
                 experiment_tokens: int = 0):
        self.llm, self.chooser, self.journal, self.trace = llm, chooser, journal, trace
        self.settings, self.emit, self.seed = settings, emit, seed
        self.experiment_tokens = experiment_tokens  # spent by the experiment before this job
        self.live_tokens = 0  # spent by this run's live calls (replayed ones were counted)
        self.calls = 0
        self._context_of: dict[str, int] | None = None

    # --- asking ---------------------------------------------------------------------------

    def ask(self, role: str, stage: str, context: dict, schema: dict, *, attempt: int = 1,
            unit: str = "", parse: Parser = parse_json) -> Answer:
        """The role's parsed answer to the stage's prompt; unparseable answers get up to
        ``repair_attempts`` follow-up prompts, then the call fails with Abandoned."""
        messages = [{"role": "system", "content": prompts.render(role, "system")},
                    {"role": "user", "content": prompts.render(role, stage, **context)}]
        templates = self.trace.metadata.setdefault("templates", [])
        for name in (prompts.version(role, "system"), prompts.version(role, stage)):
            if name not in templates:
                templates.append(name)
        repairs = 0
        while True:
            call_stage = f"{stage}:repair" if repairs else stage
            text, model = self._complete(role, call_stage, messages, schema, attempt, unit, stage)
            try:
                return Answer(parse(text, schema), text, model, role)
            except ParseError as exc:
                self.chooser.reward(role, model, False)
                if repairs == self.settings.repair_attempts:
                    raise Abandoned(f"{role} answer at {stage} could not be parsed after "
                                    f"{repairs} repair prompt(s): {exc}") from None
                repairs += 1
                messages = [*messages, {"role": "assistant", "content": text},
                            {"role": "user", "content": prompts.render(
                                "common", "repair", error=str(exc), schema=schema)}]

    def credit(self, answer: Answer, success: bool) -> None:
        """Tell the model chooser whether the answer did its job."""
        self.chooser.reward(answer.role, answer.model, success)

    # --- one call ---------------------------------------------------------------------------

    def _complete(self, role: str, stage: str, messages: list[dict], schema: dict,
                  attempt: int, unit: str, template_stage: str) -> tuple[str, str]:
        key = key_of(role, stage, messages, schema)
        record = self.journal.replay("llm", key)
        if record is None:
            self._check_budget()
            binding = self.chooser.choose(role)
            wanted = (binding.max_tokens or self.settings.max_tokens.get(template_stage)
                      or self.settings.max_tokens.get(role) or 512)
            max_tokens = self._fitted(wanted, messages, binding.model, role)
            temperature = (binding.temperature if binding.temperature is not None
                           else self.settings.temperature)
            self.emit({"stage": stage, "role": role, "unit": unit, "attempt": attempt,
                       "message": f"asking the {role} ({stage})"})
            started = time.monotonic()
            result = self._chat(messages, model=binding.model or None, role=role,
                                json_schema=schema if self.settings.constrained else None,
                                max_tokens=max_tokens, temperature=temperature,
                                seed=(self.seed + self.calls) % (1 << 31))
            record = {"response": result.text, "model": result.model,
                      "prompt_tokens": result.prompt_tokens,
                      "completion_tokens": result.completion_tokens,
                      "latency_seconds": round(time.monotonic() - started, 4),
                      "finish_reason": result.finish_reason}
            self.journal.record("llm", key, record)
            self.live_tokens += result.prompt_tokens + result.completion_tokens
        self.calls += 1
        self.trace.add_call({
            "role": role, "model": record["model"], "stage": stage, "attempt": attempt, "unit": unit,
            "prompt": "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages),
            **{k: record[k] for k in ("response", "prompt_tokens", "completion_tokens",
                                      "latency_seconds")}})
        self.chooser.spent(role, record["model"], record["prompt_tokens"] + record["completion_tokens"])
        self.emit({"stage": stage, "role": role, "unit": unit, "attempt": attempt,
                   "tokens": self.trace.tokens, "message": f"{role} answered ({stage}, "
                   f"{record['completion_tokens']} tokens)"})
        return record["response"], record["model"]

    def _fitted(self, wanted: int, messages: list[dict], model: str, role: str) -> int:
        """``wanted`` completion tokens, fewer where the prompt leaves less of the model's
        context (the prompt's size estimated at CHARS_PER_TOKEN, on the safe side)."""
        context = self._contexts().get(model or f"role:{role}")
        if not context:
            return wanted
        prompt = sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN + 16 * len(messages)
        room = context - prompt
        if room < MIN_COMPLETION:
            raise Abandoned(f"the {role} prompt (about {prompt} tokens) leaves no room in the "
                            f"model's context of {context} tokens")
        return min(wanted, room)

    def _contexts(self) -> dict[str, int]:
        """Model name (and "role:<role>") -> context length, as the gateway lists them."""
        if self._context_of is None:
            self._context_of = {}
            try:
                models = self.llm.models()
            except LLMError:
                return self._context_of
            for m in models:
                self._context_of[m.name] = m.max_context
                for r in m.roles:
                    self._context_of[f"role:{pb.LLMRole.Name(r).removeprefix('LLM_ROLE_').lower()}"] = m.max_context
        return self._context_of

    def _chat(self, messages: list[dict], **options: Any):
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.settings.llm_retries)),
            wait=tenacity.wait_exponential(multiplier=self.settings.retry_wait_s,
                                           max=30.0),
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, LLMError) and e.code in TRANSIENT),
            before_sleep=lambda state: self._retrying(state),
            reraise=True)
        try:
            return retrying(self.llm.chat, messages, **options)
        except LLMError as exc:
            raise Abandoned(f"the gateway failed the {options.get('role')} call: {exc}",
                            "infrastructure") from None

    def _retrying(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.trace.note(f"gateway error, retrying (try {state.attempt_number}): {error}")
        self.emit({"stage": "retry", "message": f"gateway error, retrying: {error}"})

    def _check_budget(self) -> None:
        s = self.settings
        if s.max_tokens_per_design and self.trace.tokens >= s.max_tokens_per_design:
            raise Abandoned(f"token budget per design exhausted: {self.trace.tokens} tokens "
                            f"used of {s.max_tokens_per_design}", "budget")
        spent = self.experiment_tokens + self.live_tokens
        if s.max_tokens_per_experiment and spent >= s.max_tokens_per_experiment:
            raise Abandoned(f"token budget of the experiment exhausted: {spent} tokens used "
                            f"of {s.max_tokens_per_experiment}", "budget")
