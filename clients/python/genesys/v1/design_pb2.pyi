import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DesignOperation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DESIGN_OPERATION_UNSPECIFIED: _ClassVar[DesignOperation]
    DESIGN_OPERATION_SEED: _ClassVar[DesignOperation]
    DESIGN_OPERATION_MUTATION: _ClassVar[DesignOperation]
    DESIGN_OPERATION_CROSSOVER: _ClassVar[DesignOperation]
    DESIGN_OPERATION_SCRATCH: _ClassVar[DesignOperation]

class DesignState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DESIGN_STATE_UNSPECIFIED: _ClassVar[DesignState]
    DESIGN_STATE_PROPOSED: _ClassVar[DesignState]
    DESIGN_STATE_IMPLEMENTED: _ClassVar[DesignState]
    DESIGN_STATE_VERIFIED: _ClassVar[DesignState]
    DESIGN_STATE_FAILED: _ClassVar[DesignState]

class Quadrant(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUADRANT_UNSPECIFIED: _ClassVar[Quadrant]
    QUADRANT_GOOD_CONFIDENT: _ClassVar[Quadrant]
    QUADRANT_GOOD_UNCONFIDENT: _ClassVar[Quadrant]
    QUADRANT_POOR_CONFIDENT: _ClassVar[Quadrant]
    QUADRANT_POOR_UNCONFIDENT: _ClassVar[Quadrant]

class DesignView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DESIGN_VIEW_UNSPECIFIED: _ClassVar[DesignView]
    DESIGN_VIEW_BASIC: _ClassVar[DesignView]
    DESIGN_VIEW_FULL: _ClassVar[DesignView]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_EXPERIMENT_CREATED: _ClassVar[EventKind]
    EVENT_KIND_EXPERIMENT_UPDATED: _ClassVar[EventKind]
    EVENT_KIND_DESIGN_SUBMITTED: _ClassVar[EventKind]
    EVENT_KIND_RESULT_REPORTED: _ClassVar[EventKind]
    EVENT_KIND_JOB_ENQUEUED: _ClassVar[EventKind]
    EVENT_KIND_JOB_LEASED: _ClassVar[EventKind]
    EVENT_KIND_JOB_PROGRESS: _ClassVar[EventKind]
    EVENT_KIND_JOB_COMPLETED: _ClassVar[EventKind]
    EVENT_KIND_JOB_FAILED: _ClassVar[EventKind]
    EVENT_KIND_JOB_REQUEUED: _ClassVar[EventKind]
    EVENT_KIND_JOB_CANCELLED: _ClassVar[EventKind]
    EVENT_KIND_BUDGET_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_WORKER_REGISTERED: _ClassVar[EventKind]
    EVENT_KIND_WORKER_DEAD: _ClassVar[EventKind]
DESIGN_OPERATION_UNSPECIFIED: DesignOperation
DESIGN_OPERATION_SEED: DesignOperation
DESIGN_OPERATION_MUTATION: DesignOperation
DESIGN_OPERATION_CROSSOVER: DesignOperation
DESIGN_OPERATION_SCRATCH: DesignOperation
DESIGN_STATE_UNSPECIFIED: DesignState
DESIGN_STATE_PROPOSED: DesignState
DESIGN_STATE_IMPLEMENTED: DesignState
DESIGN_STATE_VERIFIED: DesignState
DESIGN_STATE_FAILED: DesignState
QUADRANT_UNSPECIFIED: Quadrant
QUADRANT_GOOD_CONFIDENT: Quadrant
QUADRANT_GOOD_UNCONFIDENT: Quadrant
QUADRANT_POOR_CONFIDENT: Quadrant
QUADRANT_POOR_UNCONFIDENT: Quadrant
DESIGN_VIEW_UNSPECIFIED: DesignView
DESIGN_VIEW_BASIC: DesignView
DESIGN_VIEW_FULL: DesignView
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_EXPERIMENT_CREATED: EventKind
EVENT_KIND_EXPERIMENT_UPDATED: EventKind
EVENT_KIND_DESIGN_SUBMITTED: EventKind
EVENT_KIND_RESULT_REPORTED: EventKind
EVENT_KIND_JOB_ENQUEUED: EventKind
EVENT_KIND_JOB_LEASED: EventKind
EVENT_KIND_JOB_PROGRESS: EventKind
EVENT_KIND_JOB_COMPLETED: EventKind
EVENT_KIND_JOB_FAILED: EventKind
EVENT_KIND_JOB_REQUEUED: EventKind
EVENT_KIND_JOB_CANCELLED: EventKind
EVENT_KIND_BUDGET_CHANGED: EventKind
EVENT_KIND_WORKER_REGISTERED: EventKind
EVENT_KIND_WORKER_DEAD: EventKind

class UnitDecl(_message.Message):
    __slots__ = ("name", "desc", "inputs", "outputs", "requirements")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESC_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    desc: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    outputs: _containers.RepeatedScalarFieldContainer[str]
    requirements: str
    def __init__(self, name: _Optional[str] = ..., desc: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., outputs: _Optional[_Iterable[str]] = ..., requirements: _Optional[str] = ...) -> None: ...

class GauUnit(_message.Message):
    __slots__ = ("name", "code", "children", "desc")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    DESC_FIELD_NUMBER: _ClassVar[int]
    name: str
    code: str
    children: _containers.RepeatedCompositeFieldContainer[UnitDecl]
    desc: str
    def __init__(self, name: _Optional[str] = ..., code: _Optional[str] = ..., children: _Optional[_Iterable[_Union[UnitDecl, _Mapping]]] = ..., desc: _Optional[str] = ...) -> None: ...

class GauTree(_message.Message):
    __slots__ = ("name", "root", "config_json", "imports", "units", "doc")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    IMPORTS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    name: str
    root: str
    config_json: str
    imports: _containers.RepeatedScalarFieldContainer[str]
    units: _containers.RepeatedCompositeFieldContainer[GauUnit]
    doc: str
    def __init__(self, name: _Optional[str] = ..., root: _Optional[str] = ..., config_json: _Optional[str] = ..., imports: _Optional[_Iterable[str]] = ..., units: _Optional[_Iterable[_Union[GauUnit, _Mapping]]] = ..., doc: _Optional[str] = ...) -> None: ...

class PromptRecord(_message.Message):
    __slots__ = ("role", "model", "prompt", "response", "prompt_tokens", "completion_tokens", "latency_seconds", "stage", "attempt", "unit")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    role: str
    model: str
    prompt: str
    response: str
    prompt_tokens: int
    completion_tokens: int
    latency_seconds: float
    stage: str
    attempt: int
    unit: str
    def __init__(self, role: _Optional[str] = ..., model: _Optional[str] = ..., prompt: _Optional[str] = ..., response: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., latency_seconds: _Optional[float] = ..., stage: _Optional[str] = ..., attempt: _Optional[int] = ..., unit: _Optional[str] = ...) -> None: ...

class DesignTrace(_message.Message):
    __slots__ = ("operation", "proposal", "review", "review_rating", "prompts", "notes", "agent", "attempts", "metadata_json", "designer", "prompt_tokens", "completion_tokens", "check_report_json", "abandoned_reason")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    REVIEW_RATING_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    DESIGNER_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CHECK_REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_REASON_FIELD_NUMBER: _ClassVar[int]
    operation: DesignOperation
    proposal: str
    review: str
    review_rating: float
    prompts: _containers.RepeatedCompositeFieldContainer[PromptRecord]
    notes: _containers.RepeatedScalarFieldContainer[str]
    agent: str
    attempts: int
    metadata_json: str
    designer: str
    prompt_tokens: int
    completion_tokens: int
    check_report_json: str
    abandoned_reason: str
    def __init__(self, operation: _Optional[_Union[DesignOperation, str]] = ..., proposal: _Optional[str] = ..., review: _Optional[str] = ..., review_rating: _Optional[float] = ..., prompts: _Optional[_Iterable[_Union[PromptRecord, _Mapping]]] = ..., notes: _Optional[_Iterable[str]] = ..., agent: _Optional[str] = ..., attempts: _Optional[int] = ..., metadata_json: _Optional[str] = ..., designer: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., check_report_json: _Optional[str] = ..., abandoned_reason: _Optional[str] = ...) -> None: ...

class CurvePoint(_message.Message):
    __slots__ = ("step", "loss", "tokens")
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    step: int
    loss: float
    tokens: int
    def __init__(self, step: _Optional[int] = ..., loss: _Optional[float] = ..., tokens: _Optional[int] = ...) -> None: ...

class RungResult(_message.Message):
    __slots__ = ("rung", "metrics", "metrics_json", "job_id", "worker_id", "reported_at", "tokens_trained", "wall_seconds", "stderr", "train_curve", "val_curve", "tokens_per_second", "peak_memory_bytes", "training_seed", "repeats")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class StderrEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RUNG_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    METRICS_JSON_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    TOKENS_TRAINED_FIELD_NUMBER: _ClassVar[int]
    WALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    TRAIN_CURVE_FIELD_NUMBER: _ClassVar[int]
    VAL_CURVE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    TRAINING_SEED_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    rung: str
    metrics: _containers.ScalarMap[str, float]
    metrics_json: str
    job_id: str
    worker_id: str
    reported_at: _timestamp_pb2.Timestamp
    tokens_trained: int
    wall_seconds: float
    stderr: _containers.ScalarMap[str, float]
    train_curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    val_curve: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    tokens_per_second: float
    peak_memory_bytes: int
    training_seed: int
    repeats: int
    def __init__(self, rung: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., metrics_json: _Optional[str] = ..., job_id: _Optional[str] = ..., worker_id: _Optional[str] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tokens_trained: _Optional[int] = ..., wall_seconds: _Optional[float] = ..., stderr: _Optional[_Mapping[str, float]] = ..., train_curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., val_curve: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., tokens_per_second: _Optional[float] = ..., peak_memory_bytes: _Optional[int] = ..., training_seed: _Optional[int] = ..., repeats: _Optional[int] = ...) -> None: ...

class Design(_message.Message):
    __slots__ = ("id", "experiment", "name", "digest", "tree", "source", "parents", "trace", "results", "fitness", "confidence", "quadrant", "state", "created_at", "seed", "submitted_by", "job_id", "fingerprint", "label", "fitness_stderr")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    TREE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    FITNESS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    QUADRANT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_BY_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    FITNESS_STDERR_FIELD_NUMBER: _ClassVar[int]
    id: str
    experiment: str
    name: str
    digest: str
    tree: GauTree
    source: str
    parents: _containers.RepeatedScalarFieldContainer[str]
    trace: DesignTrace
    results: _containers.RepeatedCompositeFieldContainer[RungResult]
    fitness: float
    confidence: int
    quadrant: Quadrant
    state: DesignState
    created_at: _timestamp_pb2.Timestamp
    seed: bool
    submitted_by: str
    job_id: str
    fingerprint: str
    label: str
    fitness_stderr: float
    def __init__(self, id: _Optional[str] = ..., experiment: _Optional[str] = ..., name: _Optional[str] = ..., digest: _Optional[str] = ..., tree: _Optional[_Union[GauTree, _Mapping]] = ..., source: _Optional[str] = ..., parents: _Optional[_Iterable[str]] = ..., trace: _Optional[_Union[DesignTrace, _Mapping]] = ..., results: _Optional[_Iterable[_Union[RungResult, _Mapping]]] = ..., fitness: _Optional[float] = ..., confidence: _Optional[int] = ..., quadrant: _Optional[_Union[Quadrant, str]] = ..., state: _Optional[_Union[DesignState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seed: _Optional[bool] = ..., submitted_by: _Optional[str] = ..., job_id: _Optional[str] = ..., fingerprint: _Optional[str] = ..., label: _Optional[str] = ..., fitness_stderr: _Optional[float] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("seq", "kind", "experiment", "time", "design_id", "job_id", "worker_id", "message", "data_json")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    DESIGN_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: EventKind
    experiment: str
    time: _timestamp_pb2.Timestamp
    design_id: str
    job_id: str
    worker_id: str
    message: str
    data_json: str
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[_Union[EventKind, str]] = ..., experiment: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., design_id: _Optional[str] = ..., job_id: _Optional[str] = ..., worker_id: _Optional[str] = ..., message: _Optional[str] = ..., data_json: _Optional[str] = ...) -> None: ...
