"""The LLM designers' knobs: defaults from the paper's code, overridable per experiment
(ExperimentConfig.extra_json key "llm") or per job payload (key "llm")."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

DESIGNERS = ("recombination", "llm", "llm-direct", "llm-edit")


@dataclass
class DesignerSettings:
    proposal_attempts: int = 10  # proposer tries before the design is refused
    review_threshold: float = 4.0  # reviewer rating a proposal needs (1-5)
    # A proposal this close to an earlier one is sent back unreviewed: word-sequence ratio
    # (difflib) against this job's attempts and the siblings, embedding cosine (the knowledge
    # service) against the experiment's past proposals.
    similarity_threshold: float = 0.9
    search_rounds: int = 1  # literature queries before a proposal (needs a knowledge service)
    unit_attempts: int = 7  # coder attempts per unit
    max_failed_units: int = 3  # failed units before the design is abandoned
    observer_threshold: float = 3.0  # observer rating an implementation needs (1-5)
    checker_feedback: bool = True  # False: the coder never sees the checker's message (ablation)
    direct_attempts: int = 7  # whole-file attempts of direct prompting
    edit_attempts: int = 4  # operations tried in edit mode
    max_edit_options: int = 40  # enum size of edit mode's operation choice
    repair_attempts: int = 2  # follow-up prompts when an answer cannot be parsed
    constrained: bool = True  # send each answer's JSON schema as constrained output
    llm_retries: int = 4  # tries of one call on a transient gateway error
    retry_wait_s: float = 1.0  # first back-off of those retries (doubles, at most 30 s)
    max_tokens_per_design: int = 0  # prompt + completion tokens of one design (0: no limit)
    max_tokens_per_experiment: int = 0  # of the whole experiment, as the gateway counts (0: none)
    temperature: float = 0.7
    max_tokens: dict[str, int] = field(default_factory=lambda: {
        "proposer": 1024, "reviewer": 512, "planner": 256, "coder": 2048, "observer": 384,
        "editor": 256})

    @classmethod
    def from_dict(cls, values: dict | None) -> DesignerSettings:
        """Known keys of ``values`` over the defaults; a value of the wrong type is an error
        naming the key."""
        settings = cls()
        for f in fields(cls):
            if not values or f.name not in values:
                continue
            value = values[f.name]
            default = getattr(settings, f.name)
            if f.name == "max_tokens":
                if not isinstance(value, dict):
                    raise ValueError("llm.max_tokens must be an object of role -> tokens")
                value = {**default, **{str(k): int(v) for k, v in value.items()}}
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"llm.{f.name} must be true or false")
            elif isinstance(default, (int, float)):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"llm.{f.name} must be a number >= 0")
                value = type(default)(value)
            setattr(settings, f.name, value)
        return settings
