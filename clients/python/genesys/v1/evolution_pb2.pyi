from genesys.v1 import design_pb2 as _design_pb2
from genesys.v1 import experiment_pb2 as _experiment_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LineageDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINEAGE_DIRECTION_UNSPECIFIED: _ClassVar[LineageDirection]
    LINEAGE_DIRECTION_ANCESTORS: _ClassVar[LineageDirection]
    LINEAGE_DIRECTION_DESCENDANTS: _ClassVar[LineageDirection]
LINEAGE_DIRECTION_UNSPECIFIED: LineageDirection
LINEAGE_DIRECTION_ANCESTORS: LineageDirection
LINEAGE_DIRECTION_DESCENDANTS: LineageDirection

class SeedDesign(_message.Message):
    __slots__ = ("name", "source", "tree", "digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TREE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    tree: _design_pb2.GauTree
    digest: str
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., tree: _Optional[_Union[_design_pb2.GauTree, _Mapping]] = ..., digest: _Optional[str] = ...) -> None: ...

class CreateExperimentRequest(_message.Message):
    __slots__ = ("name", "description", "config", "seeds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    config: _experiment_pb2.ExperimentConfig
    seeds: _containers.RepeatedCompositeFieldContainer[SeedDesign]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., config: _Optional[_Union[_experiment_pb2.ExperimentConfig, _Mapping]] = ..., seeds: _Optional[_Iterable[_Union[SeedDesign, _Mapping]]] = ...) -> None: ...

class CreateExperimentResponse(_message.Message):
    __slots__ = ("experiment", "seed_design_ids")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    SEED_DESIGN_IDS_FIELD_NUMBER: _ClassVar[int]
    experiment: _experiment_pb2.Experiment
    seed_design_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, experiment: _Optional[_Union[_experiment_pb2.Experiment, _Mapping]] = ..., seed_design_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetExperimentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: _experiment_pb2.Experiment
    def __init__(self, experiment: _Optional[_Union[_experiment_pb2.Experiment, _Mapping]] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments",)
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[_experiment_pb2.Experiment]
    def __init__(self, experiments: _Optional[_Iterable[_Union[_experiment_pb2.Experiment, _Mapping]]] = ...) -> None: ...

class UpdateExperimentRequest(_message.Message):
    __slots__ = ("name", "config", "state", "update_mask")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: _experiment_pb2.ExperimentConfig
    state: _experiment_pb2.ExperimentState
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[_experiment_pb2.ExperimentConfig, _Mapping]] = ..., state: _Optional[_Union[_experiment_pb2.ExperimentState, str]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: _experiment_pb2.Experiment
    def __init__(self, experiment: _Optional[_Union[_experiment_pb2.Experiment, _Mapping]] = ...) -> None: ...

class SubmitDesignRequest(_message.Message):
    __slots__ = ("experiment", "name", "tree", "source", "parents", "trace", "digest", "state", "job_id", "fencing_token")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TREE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    name: str
    tree: _design_pb2.GauTree
    source: str
    parents: _containers.RepeatedScalarFieldContainer[str]
    trace: _design_pb2.DesignTrace
    digest: str
    state: _design_pb2.DesignState
    job_id: str
    fencing_token: int
    def __init__(self, experiment: _Optional[str] = ..., name: _Optional[str] = ..., tree: _Optional[_Union[_design_pb2.GauTree, _Mapping]] = ..., source: _Optional[str] = ..., parents: _Optional[_Iterable[str]] = ..., trace: _Optional[_Union[_design_pb2.DesignTrace, _Mapping]] = ..., digest: _Optional[str] = ..., state: _Optional[_Union[_design_pb2.DesignState, str]] = ..., job_id: _Optional[str] = ..., fencing_token: _Optional[int] = ...) -> None: ...

class SubmitDesignResponse(_message.Message):
    __slots__ = ("design",)
    DESIGN_FIELD_NUMBER: _ClassVar[int]
    design: _design_pb2.Design
    def __init__(self, design: _Optional[_Union[_design_pb2.Design, _Mapping]] = ...) -> None: ...

class GetDesignRequest(_message.Message):
    __slots__ = ("id", "view")
    ID_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    id: str
    view: _design_pb2.DesignView
    def __init__(self, id: _Optional[str] = ..., view: _Optional[_Union[_design_pb2.DesignView, str]] = ...) -> None: ...

class GetDesignResponse(_message.Message):
    __slots__ = ("design",)
    DESIGN_FIELD_NUMBER: _ClassVar[int]
    design: _design_pb2.Design
    def __init__(self, design: _Optional[_Union[_design_pb2.Design, _Mapping]] = ...) -> None: ...

class ListDesignsRequest(_message.Message):
    __slots__ = ("experiment", "state", "quadrant", "verified_rung", "parent", "limit", "offset", "view", "digest")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    QUADRANT_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_RUNG_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    state: _design_pb2.DesignState
    quadrant: _design_pb2.Quadrant
    verified_rung: str
    parent: str
    limit: int
    offset: int
    view: _design_pb2.DesignView
    digest: str
    def __init__(self, experiment: _Optional[str] = ..., state: _Optional[_Union[_design_pb2.DesignState, str]] = ..., quadrant: _Optional[_Union[_design_pb2.Quadrant, str]] = ..., verified_rung: _Optional[str] = ..., parent: _Optional[str] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., view: _Optional[_Union[_design_pb2.DesignView, str]] = ..., digest: _Optional[str] = ...) -> None: ...

class ListDesignsResponse(_message.Message):
    __slots__ = ("designs", "total")
    DESIGNS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    designs: _containers.RepeatedCompositeFieldContainer[_design_pb2.Design]
    total: int
    def __init__(self, designs: _Optional[_Iterable[_Union[_design_pb2.Design, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class LineageEdge(_message.Message):
    __slots__ = ("parent", "child")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    CHILD_FIELD_NUMBER: _ClassVar[int]
    parent: str
    child: str
    def __init__(self, parent: _Optional[str] = ..., child: _Optional[str] = ...) -> None: ...

class GetLineageRequest(_message.Message):
    __slots__ = ("design_id", "direction", "depth")
    DESIGN_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    design_id: str
    direction: LineageDirection
    depth: int
    def __init__(self, design_id: _Optional[str] = ..., direction: _Optional[_Union[LineageDirection, str]] = ..., depth: _Optional[int] = ...) -> None: ...

class GetLineageResponse(_message.Message):
    __slots__ = ("designs", "edges")
    DESIGNS_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    designs: _containers.RepeatedCompositeFieldContainer[_design_pb2.Design]
    edges: _containers.RepeatedCompositeFieldContainer[LineageEdge]
    def __init__(self, designs: _Optional[_Iterable[_Union[_design_pb2.Design, _Mapping]]] = ..., edges: _Optional[_Iterable[_Union[LineageEdge, _Mapping]]] = ...) -> None: ...

class LeaderboardEntry(_message.Message):
    __slots__ = ("rank", "design_id", "name", "fitness", "confidence", "quadrant", "metrics", "score")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RANK_FIELD_NUMBER: _ClassVar[int]
    DESIGN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FITNESS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    QUADRANT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    rank: int
    design_id: str
    name: str
    fitness: float
    confidence: int
    quadrant: _design_pb2.Quadrant
    metrics: _containers.ScalarMap[str, float]
    score: float
    def __init__(self, rank: _Optional[int] = ..., design_id: _Optional[str] = ..., name: _Optional[str] = ..., fitness: _Optional[float] = ..., confidence: _Optional[int] = ..., quadrant: _Optional[_Union[_design_pb2.Quadrant, str]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., score: _Optional[float] = ...) -> None: ...

class GetLeaderboardRequest(_message.Message):
    __slots__ = ("experiment", "rung", "limit")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    RUNG_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    rung: str
    limit: int
    def __init__(self, experiment: _Optional[str] = ..., rung: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class GetLeaderboardResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LeaderboardEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[LeaderboardEntry, _Mapping]]] = ...) -> None: ...

class ReportResultRequest(_message.Message):
    __slots__ = ("design_id", "result")
    DESIGN_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    design_id: str
    result: _design_pb2.RungResult
    def __init__(self, design_id: _Optional[str] = ..., result: _Optional[_Union[_design_pb2.RungResult, _Mapping]] = ...) -> None: ...

class ReportResultResponse(_message.Message):
    __slots__ = ("design",)
    DESIGN_FIELD_NUMBER: _ClassVar[int]
    design: _design_pb2.Design
    def __init__(self, design: _Optional[_Union[_design_pb2.Design, _Mapping]] = ...) -> None: ...

class SelectParentsRequest(_message.Message):
    __slots__ = ("experiment", "operation", "count", "seed")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    operation: _design_pb2.DesignOperation
    count: int
    seed: int
    def __init__(self, experiment: _Optional[str] = ..., operation: _Optional[_Union[_design_pb2.DesignOperation, str]] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class SelectParentsResponse(_message.Message):
    __slots__ = ("parents", "reason")
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    parents: _containers.RepeatedCompositeFieldContainer[_design_pb2.Design]
    reason: str
    def __init__(self, parents: _Optional[_Iterable[_Union[_design_pb2.Design, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("experiment", "kinds", "after_seq", "replay")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    kinds: _containers.RepeatedScalarFieldContainer[_design_pb2.EventKind]
    after_seq: int
    replay: bool
    def __init__(self, experiment: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[_design_pb2.EventKind, str]]] = ..., after_seq: _Optional[int] = ..., replay: _Optional[bool] = ...) -> None: ...
