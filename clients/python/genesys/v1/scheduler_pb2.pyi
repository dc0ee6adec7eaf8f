from genesys.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FailureKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_KIND_UNSPECIFIED: _ClassVar[FailureKind]
    FAILURE_KIND_DESIGN: _ClassVar[FailureKind]
    FAILURE_KIND_INFRASTRUCTURE: _ClassVar[FailureKind]
FAILURE_KIND_UNSPECIFIED: FailureKind
FAILURE_KIND_DESIGN: FailureKind
FAILURE_KIND_INFRASTRUCTURE: FailureKind

class RegisterWorkerRequest(_message.Message):
    __slots__ = ("name", "capabilities", "version", "worker_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    capabilities: _job_pb2.WorkerCapabilities
    version: str
    worker_id: str
    def __init__(self, name: _Optional[str] = ..., capabilities: _Optional[_Union[_job_pb2.WorkerCapabilities, _Mapping]] = ..., version: _Optional[str] = ..., worker_id: _Optional[str] = ...) -> None: ...

class RegisterWorkerResponse(_message.Message):
    __slots__ = ("worker", "heartbeat_seconds", "lease_seconds")
    WORKER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    worker: _job_pb2.Worker
    heartbeat_seconds: int
    lease_seconds: int
    def __init__(self, worker: _Optional[_Union[_job_pb2.Worker, _Mapping]] = ..., heartbeat_seconds: _Optional[int] = ..., lease_seconds: _Optional[int] = ...) -> None: ...

class LeaseRef(_message.Message):
    __slots__ = ("job_id", "fencing_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    fencing_token: int
    def __init__(self, job_id: _Optional[str] = ..., fencing_token: _Optional[int] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("worker_id", "leases", "draining")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    leases: _containers.RepeatedCompositeFieldContainer[LeaseRef]
    draining: bool
    def __init__(self, worker_id: _Optional[str] = ..., leases: _Optional[_Iterable[_Union[LeaseRef, _Mapping]]] = ..., draining: _Optional[bool] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("state", "leases", "cancelled_job_ids", "lost_job_ids")
    STATE_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    LOST_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    state: _job_pb2.WorkerState
    leases: _containers.RepeatedCompositeFieldContainer[_job_pb2.Lease]
    cancelled_job_ids: _containers.RepeatedScalarFieldContainer[str]
    lost_job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, state: _Optional[_Union[_job_pb2.WorkerState, str]] = ..., leases: _Optional[_Iterable[_Union[_job_pb2.Lease, _Mapping]]] = ..., cancelled_job_ids: _Optional[_Iterable[str]] = ..., lost_job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LeaseJobRequest(_message.Message):
    __slots__ = ("worker_id", "kinds", "experiment", "wait_seconds")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    kinds: _containers.RepeatedScalarFieldContainer[_job_pb2.JobKind]
    experiment: str
    wait_seconds: float
    def __init__(self, worker_id: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[_job_pb2.JobKind, str]]] = ..., experiment: _Optional[str] = ..., wait_seconds: _Optional[float] = ...) -> None: ...

class LeaseJobResponse(_message.Message):
    __slots__ = ("job", "lease")
    JOB_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    lease: _job_pb2.Lease
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ..., lease: _Optional[_Union[_job_pb2.Lease, _Mapping]] = ...) -> None: ...

class RenewLeaseRequest(_message.Message):
    __slots__ = ("job_id", "fencing_token", "worker_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    fencing_token: int
    worker_id: str
    def __init__(self, job_id: _Optional[str] = ..., fencing_token: _Optional[int] = ..., worker_id: _Optional[str] = ...) -> None: ...

class RenewLeaseResponse(_message.Message):
    __slots__ = ("lease", "cancel_requested")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    lease: _job_pb2.Lease
    cancel_requested: bool
    def __init__(self, lease: _Optional[_Union[_job_pb2.Lease, _Mapping]] = ..., cancel_requested: _Optional[bool] = ...) -> None: ...

class ReportProgressRequest(_message.Message):
    __slots__ = ("worker_id", "fencing_token", "progress")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    fencing_token: int
    progress: _job_pb2.ProgressEvent
    def __init__(self, worker_id: _Optional[str] = ..., fencing_token: _Optional[int] = ..., progress: _Optional[_Union[_job_pb2.ProgressEvent, _Mapping]] = ...) -> None: ...

class ReportProgressResponse(_message.Message):
    __slots__ = ("cancel_requested",)
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    cancel_requested: bool
    def __init__(self, cancel_requested: _Optional[bool] = ...) -> None: ...

class CompleteJobRequest(_message.Message):
    __slots__ = ("job_id", "fencing_token", "worker_id", "result", "lease_next", "next_kinds", "next_experiment")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    LEASE_NEXT_FIELD_NUMBER: _ClassVar[int]
    NEXT_KINDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    fencing_token: int
    worker_id: str
    result: _job_pb2.JobResult
    lease_next: bool
    next_kinds: _containers.RepeatedScalarFieldContainer[_job_pb2.JobKind]
    next_experiment: str
    def __init__(self, job_id: _Optional[str] = ..., fencing_token: _Optional[int] = ..., worker_id: _Optional[str] = ..., result: _Optional[_Union[_job_pb2.JobResult, _Mapping]] = ..., lease_next: _Optional[bool] = ..., next_kinds: _Optional[_Iterable[_Union[_job_pb2.JobKind, str]]] = ..., next_experiment: _Optional[str] = ...) -> None: ...

class CompleteJobResponse(_message.Message):
    __slots__ = ("job", "already_completed", "next_job", "next_lease")
    JOB_FIELD_NUMBER: _ClassVar[int]
    ALREADY_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    NEXT_JOB_FIELD_NUMBER: _ClassVar[int]
    NEXT_LEASE_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    already_completed: bool
    next_job: _job_pb2.Job
    next_lease: _job_pb2.Lease
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ..., already_completed: _Optional[bool] = ..., next_job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ..., next_lease: _Optional[_Union[_job_pb2.Lease, _Mapping]] = ...) -> None: ...

class FailJobRequest(_message.Message):
    __slots__ = ("job_id", "fencing_token", "worker_id", "error", "retryable", "kind", "result_json")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    fencing_token: int
    worker_id: str
    error: str
    retryable: bool
    kind: FailureKind
    result_json: str
    def __init__(self, job_id: _Optional[str] = ..., fencing_token: _Optional[int] = ..., worker_id: _Optional[str] = ..., error: _Optional[str] = ..., retryable: _Optional[bool] = ..., kind: _Optional[_Union[FailureKind, str]] = ..., result_json: _Optional[str] = ...) -> None: ...

class FailJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class ReleaseJobRequest(_message.Message):
    __slots__ = ("job_id", "fencing_token", "worker_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FENCING_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    fencing_token: int
    worker_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., fencing_token: _Optional[int] = ..., worker_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReleaseJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("experiment", "state", "kind", "worker_id", "limit")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    state: _job_pb2.JobState
    kind: _job_pb2.JobKind
    worker_id: str
    limit: int
    def __init__(self, experiment: _Optional[str] = ..., state: _Optional[_Union[_job_pb2.JobState, str]] = ..., kind: _Optional[_Union[_job_pb2.JobKind, str]] = ..., worker_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.Job, _Mapping]]] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ("include_dead", "limit")
    INCLUDE_DEAD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    include_dead: bool
    limit: int
    def __init__(self, include_dead: _Optional[bool] = ..., limit: _Optional[int] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[_job_pb2.Worker]
    def __init__(self, workers: _Optional[_Iterable[_Union[_job_pb2.Worker, _Mapping]]] = ...) -> None: ...

class DeregisterWorkerRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class DeregisterWorkerResponse(_message.Message):
    __slots__ = ("worker",)
    WORKER_FIELD_NUMBER: _ClassVar[int]
    worker: _job_pb2.Worker
    def __init__(self, worker: _Optional[_Union[_job_pb2.Worker, _Mapping]] = ...) -> None: ...

class EnqueueDesignJobsRequest(_message.Message):
    __slots__ = ("experiment", "count", "operation")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    count: int
    operation: str
    def __init__(self, experiment: _Optional[str] = ..., count: _Optional[int] = ..., operation: _Optional[str] = ...) -> None: ...

class EnqueueDesignJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.Job, _Mapping]]] = ...) -> None: ...
