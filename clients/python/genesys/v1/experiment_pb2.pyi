import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExperimentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_STATE_UNSPECIFIED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_ACTIVE: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_PAUSED: _ClassVar[ExperimentState]
    EXPERIMENT_STATE_FINISHED: _ClassVar[ExperimentState]
EXPERIMENT_STATE_UNSPECIFIED: ExperimentState
EXPERIMENT_STATE_ACTIVE: ExperimentState
EXPERIMENT_STATE_PAUSED: ExperimentState
EXPERIMENT_STATE_FINISHED: ExperimentState

class Rung(_message.Message):
    __slots__ = ("name", "budget", "tokens_per_design", "min_memory_bytes", "lease_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_DESIGN_FIELD_NUMBER: _ClassVar[int]
    MIN_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    budget: int
    tokens_per_design: int
    min_memory_bytes: int
    lease_seconds: int
    def __init__(self, name: _Optional[str] = ..., budget: _Optional[int] = ..., tokens_per_design: _Optional[int] = ..., min_memory_bytes: _Optional[int] = ..., lease_seconds: _Optional[int] = ...) -> None: ...

class LadderConfig(_message.Message):
    __slots__ = ("rungs", "selection_ratio")
    RUNGS_FIELD_NUMBER: _ClassVar[int]
    SELECTION_RATIO_FIELD_NUMBER: _ClassVar[int]
    rungs: _containers.RepeatedCompositeFieldContainer[Rung]
    selection_ratio: float
    def __init__(self, rungs: _Optional[_Iterable[_Union[Rung, _Mapping]]] = ..., selection_ratio: _Optional[float] = ...) -> None: ...

class SelectionConfig(_message.Message):
    __slots__ = ("p_explore", "fitness_cut", "confidence_cut", "seed", "noise", "min_advantage", "parent_policy")
    P_EXPLORE_FIELD_NUMBER: _ClassVar[int]
    FITNESS_CUT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_CUT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NOISE_FIELD_NUMBER: _ClassVar[int]
    MIN_ADVANTAGE_FIELD_NUMBER: _ClassVar[int]
    PARENT_POLICY_FIELD_NUMBER: _ClassVar[int]
    p_explore: float
    fitness_cut: float
    confidence_cut: float
    seed: int
    noise: float
    min_advantage: float
    parent_policy: str
    def __init__(self, p_explore: _Optional[float] = ..., fitness_cut: _Optional[float] = ..., confidence_cut: _Optional[float] = ..., seed: _Optional[int] = ..., noise: _Optional[float] = ..., min_advantage: _Optional[float] = ..., parent_policy: _Optional[str] = ...) -> None: ...

class DesignMix(_message.Message):
    __slots__ = ("mutation", "crossover", "scratch", "crossover_unlock", "scratch_unlock", "max_designs", "max_open_design_jobs")
    MUTATION_FIELD_NUMBER: _ClassVar[int]
    CROSSOVER_FIELD_NUMBER: _ClassVar[int]
    SCRATCH_FIELD_NUMBER: _ClassVar[int]
    CROSSOVER_UNLOCK_FIELD_NUMBER: _ClassVar[int]
    SCRATCH_UNLOCK_FIELD_NUMBER: _ClassVar[int]
    MAX_DESIGNS_FIELD_NUMBER: _ClassVar[int]
    MAX_OPEN_DESIGN_JOBS_FIELD_NUMBER: _ClassVar[int]
    mutation: float
    crossover: float
    scratch: float
    crossover_unlock: int
    scratch_unlock: int
    max_designs: int
    max_open_design_jobs: int
    def __init__(self, mutation: _Optional[float] = ..., crossover: _Optional[float] = ..., scratch: _Optional[float] = ..., crossover_unlock: _Optional[int] = ..., scratch_unlock: _Optional[int] = ..., max_designs: _Optional[int] = ..., max_open_design_jobs: _Optional[int] = ...) -> None: ...

class Benchmark(_message.Message):
    __slots__ = ("name", "random_baseline", "lower_is_better", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RANDOM_BASELINE_FIELD_NUMBER: _ClassVar[int]
    LOWER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    random_baseline: float
    lower_is_better: bool
    weight: float
    def __init__(self, name: _Optional[str] = ..., random_baseline: _Optional[float] = ..., lower_is_better: _Optional[bool] = ..., weight: _Optional[float] = ...) -> None: ...

class LlmRoleBinding(_message.Message):
    __slots__ = ("role", "model", "temperature", "max_tokens")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    role: str
    model: str
    temperature: float
    max_tokens: int
    def __init__(self, role: _Optional[str] = ..., model: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ...) -> None: ...

class JobPolicy(_message.Message):
    __slots__ = ("lease_seconds", "max_attempts")
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    lease_seconds: int
    max_attempts: int
    def __init__(self, lease_seconds: _Optional[int] = ..., max_attempts: _Optional[int] = ...) -> None: ...

class ExperimentConfig(_message.Message):
    __slots__ = ("ladder", "selection", "design_mix", "benchmarks", "llm_roles", "seeds", "jobs", "extra_json")
    LADDER_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    DESIGN_MIX_FIELD_NUMBER: _ClassVar[int]
    BENCHMARKS_FIELD_NUMBER: _ClassVar[int]
    LLM_ROLES_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    ladder: LadderConfig
    selection: SelectionConfig
    design_mix: DesignMix
    benchmarks: _containers.RepeatedCompositeFieldContainer[Benchmark]
    llm_roles: _containers.RepeatedCompositeFieldContainer[LlmRoleBinding]
    seeds: _containers.RepeatedScalarFieldContainer[str]
    jobs: JobPolicy
    extra_json: str
    def __init__(self, ladder: _Optional[_Union[LadderConfig, _Mapping]] = ..., selection: _Optional[_Union[SelectionConfig, _Mapping]] = ..., design_mix: _Optional[_Union[DesignMix, _Mapping]] = ..., benchmarks: _Optional[_Iterable[_Union[Benchmark, _Mapping]]] = ..., llm_roles: _Optional[_Iterable[_Union[LlmRoleBinding, _Mapping]]] = ..., seeds: _Optional[_Iterable[str]] = ..., jobs: _Optional[_Union[JobPolicy, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ExperimentStats(_message.Message):
    __slots__ = ("designs", "verified_designs", "queued_jobs", "leased_jobs")
    DESIGNS_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_DESIGNS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_JOBS_FIELD_NUMBER: _ClassVar[int]
    LEASED_JOBS_FIELD_NUMBER: _ClassVar[int]
    designs: int
    verified_designs: int
    queued_jobs: int
    leased_jobs: int
    def __init__(self, designs: _Optional[int] = ..., verified_designs: _Optional[int] = ..., queued_jobs: _Optional[int] = ..., leased_jobs: _Optional[int] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("name", "description", "config", "config_version", "state", "created_at", "updated_at", "stats")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    config: ExperimentConfig
    config_version: int
    state: ExperimentState
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    stats: ExperimentStats
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., config: _Optional[_Union[ExperimentConfig, _Mapping]] = ..., config_version: _Optional[int] = ..., state: _Optional[_Union[ExperimentState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stats: _Optional[_Union[ExperimentStats, _Mapping]] = ...) -> None: ...
