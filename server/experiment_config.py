"""Experiment config defaults (paper + reference implementation) and validation.

Unset proto3 fields (zero values) take the defaults below, so a client may send a partial
config. Validation errors name the field (INVALID_ARGUMENT).
"""

from __future__ import annotations

import json
import math
import re

from genesys.v1 import experiment_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from .errors import InvalidArgument
from .selection import knob_problem

GiB = 1 << 30
# rung -> (default verification budget, default minimum device memory)
RUNG_DEFAULTS: dict[str, tuple[int, int]] = {
    "micro": (64, 0),
    "tiny": (16, 0),
    "14M": (256, 2 * GiB),
    "31M": (64, 4 * GiB),
    "70M": (16, 8 * GiB),
    "125M": (4, 16 * GiB),
    "350M": (1, 32 * GiB),
}
DEFAULT_LADDER = ("14M", "31M", "70M", "125M", "350M")
# name -> score of random guessing (paper benchmarks, accuracy metrics)
DEFAULT_BENCHMARKS = {
    "lambada_openai": 0.0, "hellaswag": 0.25, "piqa": 0.5, "arc_easy": 0.25,
    "arc_challenge": 0.25, "winogrande": 0.5, "openbookqa": 0.25,
}
# Held-out bits per byte (lower is better; 8 = raw bytes, no model): the default quality
# signal, the metric that separates designs at the CPU rungs where accuracies sit at chance.
BITS_PER_BYTE = experiment_pb2.Benchmark(name="bits_per_byte", random_baseline=8.0,
                                         lower_is_better=True, weight=1.0)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
PARENT_POLICIES = ("", "quadrant", "uniform", "pareto")  # SelectionConfig.parent_policy
# extra_json key "designer": which designer DESIGN jobs run (genesys.designer, genesys.designer.llm)
DESIGNERS = ("recombination", "llm", "llm-direct", "llm-edit")
LLM_ROLES = ("proposer", "reviewer", "planner", "coder", "observer")  # ExperimentConfig.llm_roles


def parse_ladder(spec: str) -> list[experiment_pb2.Rung]:
    """Rungs from "micro:8,tiny:2" (budget optional: "micro,tiny" takes the defaults)."""
    rungs = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, budget = part.partition(":")
        if name not in RUNG_DEFAULTS:
            raise InvalidArgument("ladder", f"unknown rung {name!r} (known: {', '.join(RUNG_DEFAULTS)})")
        try:
            rungs.append(experiment_pb2.Rung(name=name, budget=int(budget) if budget else 0))
        except ValueError:
            raise InvalidArgument("ladder", f"budget of {name!r} must be an integer") from None
    return rungs


def with_defaults(config: experiment_pb2.ExperimentConfig, seeds: list[str], lease_seconds: int,
                  max_attempts: int, open_design_jobs: int) -> experiment_pb2.ExperimentConfig:
    """A copy of `config` with every unset field filled in."""
    c = experiment_pb2.ExperimentConfig()
    c.CopyFrom(config)
    if not c.ladder.rungs:
        c.ladder.rungs.extend(experiment_pb2.Rung(name=n) for n in DEFAULT_LADDER)
    for rung in c.ladder.rungs:
        budget, memory = RUNG_DEFAULTS.get(rung.name, (1, 0))
        rung.budget = rung.budget or budget
        rung.min_memory_bytes = rung.min_memory_bytes or memory
    c.ladder.selection_ratio = c.ladder.selection_ratio or 4.0
    s = c.selection
    s.p_explore = s.p_explore or 0.2
    s.fitness_cut = s.fitness_cut or 0.25
    s.confidence_cut = s.confidence_cut or 0.25
    s.noise = s.noise or 0.05
    s.min_advantage = s.min_advantage or 0.02
    m = c.design_mix
    if not (m.mutation or m.crossover or m.scratch):
        m.mutation, m.crossover, m.scratch = 0.8, 0.15, 0.05
    m.crossover_unlock = m.crossover_unlock or 10
    m.scratch_unlock = m.scratch_unlock or 20
    m.max_open_design_jobs = m.max_open_design_jobs or open_design_jobs
    if not c.benchmarks:
        c.benchmarks.append(BITS_PER_BYTE)
        c.benchmarks.extend(experiment_pb2.Benchmark(name=n, random_baseline=b, weight=1.0)
                            for n, b in DEFAULT_BENCHMARKS.items())
    if not c.seeds:
        c.seeds.extend(seeds)
    c.jobs.lease_seconds = c.jobs.lease_seconds or lease_seconds
    c.jobs.max_attempts = c.jobs.max_attempts or max_attempts
    return c


def _check_finite(message: Message, prefix: str) -> None:
    """Every float in the message (recursively) is a finite number."""
    for field, value in message.ListFields():
        path = f"{prefix}.{field.name}"
        values = value if field.is_repeated else [value]
        for i, item in enumerate(values):
            where = f"{path}[{i}]" if field.is_repeated else path
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                _check_finite(item, where)
            elif isinstance(item, float) and not math.isfinite(item):
                raise InvalidArgument(where, f"not a finite number: {item}")


def validate(name: str, config: experiment_pb2.ExperimentConfig) -> None:
    if not NAME_RE.match(name):
        raise InvalidArgument("name", f"{name!r} must match {NAME_RE.pattern}")
    _check_finite(config, "config")
    rungs = [r.name for r in config.ladder.rungs]
    if len(set(rungs)) != len(rungs):
        raise InvalidArgument("config.ladder.rungs", "rung names must be unique")
    for i, rung in enumerate(config.ladder.rungs):
        if rung.name not in RUNG_DEFAULTS:
            raise InvalidArgument(f"config.ladder.rungs[{i}].name",
                                  f"unknown rung {rung.name!r} (known: {', '.join(RUNG_DEFAULTS)})")
        for field in ("budget", "tokens_per_design", "min_memory_bytes", "lease_seconds"):
            if getattr(rung, field) < 0:
                raise InvalidArgument(f"config.ladder.rungs[{i}].{field}", "must be >= 0")
    if config.ladder.selection_ratio < 1:
        raise InvalidArgument("config.ladder.selection_ratio", "must be >= 1")
    s = config.selection
    for field in ("p_explore", "fitness_cut", "confidence_cut", "noise", "min_advantage"):
        if not 0 <= getattr(s, field) <= 1:
            raise InvalidArgument(f"config.selection.{field}", "must be within [0, 1]")
    if s.parent_policy not in PARENT_POLICIES:
        raise InvalidArgument("config.selection.parent_policy",
                              f"{s.parent_policy!r} is not one of {', '.join(PARENT_POLICIES[1:])}")
    m = config.design_mix
    for field in ("mutation", "crossover", "scratch"):
        if getattr(m, field) < 0:
            raise InvalidArgument(f"config.design_mix.{field}", "must be >= 0")
    for field in ("crossover_unlock", "scratch_unlock", "max_designs", "max_open_design_jobs"):
        if getattr(m, field) < 0:
            raise InvalidArgument(f"config.design_mix.{field}", "must be >= 0")
    names = [b.name for b in config.benchmarks]
    if len(set(names)) != len(names) or "" in names:
        raise InvalidArgument("config.benchmarks", "benchmark names must be unique and non-empty")
    if config.jobs.lease_seconds <= 0 or config.jobs.max_attempts <= 0:
        raise InvalidArgument("config.jobs", "lease_seconds and max_attempts must be > 0")
    if config.extra_json:
        try:
            extra = json.loads(config.extra_json)
        except json.JSONDecodeError as e:
            raise InvalidArgument("config.extra_json", f"not JSON: {e}") from None
        if not isinstance(extra, dict):
            raise InvalidArgument("config.extra_json", "must be a JSON object")
        if "selection" in extra and (problem := knob_problem(extra["selection"])):
            raise InvalidArgument("config.extra_json.selection", problem)
        if extra.get("designer", "recombination") not in DESIGNERS:
            raise InvalidArgument("config.extra_json.designer",
                                  f"{extra['designer']!r} is not one of {', '.join(DESIGNERS)}")
        if not isinstance(extra.get("llm", {}), dict):
            raise InvalidArgument("config.extra_json.llm", "must be a JSON object (designer settings)")
    for i, binding in enumerate(config.llm_roles):
        if binding.role not in LLM_ROLES:
            raise InvalidArgument(f"config.llm_roles[{i}].role",
                                  f"{binding.role!r} is not one of {', '.join(LLM_ROLES)}")
        if binding.max_tokens < 0 or binding.temperature < 0:
            raise InvalidArgument(f"config.llm_roles[{i}]", "max_tokens and temperature must be >= 0")
