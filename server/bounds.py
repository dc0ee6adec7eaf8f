"""Bounds on every request field, checked before a handler reads or writes anything.

The rules (documented at the top of each service's .proto, with every exception noted at
its field):
- a string field holds at most `TEXT` characters (ids, names, labels);
- a repeated or map field holds at most `ITEMS` entries;
- an enum field holds a value the proto defines (proto3 keeps unknown numbers; they are
  refused here instead of being stored);
- a number is finite, at most 2**63 - 1 and >= 0, except map values (metric scores) and
  `SIGNED` fields;
- a Timestamp lies within 1970..9999;
- the ids and names a request acts on are set (`REQUIRED`).
Anything else is INVALID_ARGUMENT naming the field (errors.InvalidArgument).
"""

from __future__ import annotations

import math

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .config import LimitsConfig
from .errors import InvalidArgument

TEXT = 256
ITEMS = 1000
LONG_TEXT = 10_000
MAX_TIMESTAMP_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
P = "genesys.v1."

# Field full name -> characters (or a LimitsConfig attribute holding the limit).
TEXT_LIMITS: dict[str, int | str] = {
    P + "SubmitDesignRequest.source": "max_code_bytes",
    P + "SeedDesign.source": "max_code_bytes",
    P + "GauUnit.code": "max_code_bytes",
    P + "GauUnit.desc": LONG_TEXT,
    P + "UnitDecl.desc": LONG_TEXT,
    P + "UnitDecl.requirements": LONG_TEXT,
    P + "GauTree.doc": LONG_TEXT,
    P + "GauTree.config_json": 100_000,
    P + "GauTree.imports": 1000,
    P + "DesignTrace.proposal": "max_trace_bytes",
    P + "DesignTrace.review": "max_trace_bytes",
    P + "DesignTrace.notes": "max_trace_bytes",
    P + "DesignTrace.metadata_json": "max_trace_bytes",
    P + "DesignTrace.check_report_json": "max_trace_bytes",
    P + "DesignTrace.abandoned_reason": LONG_TEXT,
    P + "PromptRecord.prompt": "max_trace_bytes",
    P + "PromptRecord.response": "max_trace_bytes",
    P + "CreateExperimentRequest.description": LONG_TEXT,
    P + "Experiment.description": LONG_TEXT,
    P + "ExperimentConfig.extra_json": 100_000,
    P + "JobResult.metrics_json": "max_metrics_bytes",
    P + "JobResult.log_tail": 100_000,
    P + "RungResult.metrics_json": "max_metrics_bytes",
    P + "FailJobRequest.error": LONG_TEXT,
    P + "FailJobRequest.result_json": "max_trace_bytes",
    P + "ProgressEvent.message": LONG_TEXT,
    P + "ProgressEvent.metrics_json": 100_000,
    P + "ProgressEvent.stage": 64,
    P + "ReleaseJobRequest.reason": 1000,
    P + "CancelJobRequest.reason": 1000,
    P + "RegisterWorkerRequest.worker_id": 64,
    P + "RegisterWorkerRequest.name": 200,
    P + "RegisterWorkerRequest.version": 100,
    P + "SubmitDesignRequest.name": 200,
    P + "CreateTokenRequest.name": 100,
    P + "Device.kind": 64,
    P + "Device.name": 200,
    P + "WorkerCapabilities.labels": 256,  # keys are at most KEY characters
    P + "WorkerCapabilities.experiments": 64,
    P + "WorkerCapabilities.rungs": 64,
}
KEY = 200  # characters of a map key (metric names, label keys)
# Field full name -> entries.
ITEM_LIMITS: dict[str, int] = {
    # A worker record stays under ~15 KB, so 1000 of them fit one ListWorkers reply.
    P + "WorkerCapabilities.labels": 16,
    P + "WorkerCapabilities.devices": 16,
    P + "WorkerCapabilities.experiments": 32,
    P + "WorkerCapabilities.rungs": 16,
    P + "WorkerCapabilities.roles": 2,
    P + "LeaseJobRequest.kinds": 8,
    P + "CompleteJobRequest.next_kinds": 8,
    P + "WatchRequest.kinds": 64,
    P + "SubmitDesignRequest.parents": 16,
    P + "CreateExperimentRequest.seeds": 100,
    P + "LadderConfig.rungs": 32,
    P + "ExperimentConfig.benchmarks": 100,
    P + "ExperimentConfig.llm_roles": 100,
    P + "ExperimentConfig.seeds": 100,
    P + "DesignTrace.prompts": 10_000,
    P + "DesignTrace.notes": 10_000,
    P + "GauTree.units": 1000,
}
# Request -> fields that must be set: an empty id is INVALID_ARGUMENT in every RPC.
REQUIRED: dict[str, tuple[str, ...]] = {P + k: v for k, v in {
    "CreateExperimentRequest": ("name",), "GetExperimentRequest": ("name",),
    "UpdateExperimentRequest": ("name",), "SubmitDesignRequest": ("experiment",),
    "GetDesignRequest": ("id",), "ListDesignsRequest": ("experiment",),
    "GetLineageRequest": ("design_id",), "GetLeaderboardRequest": ("experiment",),
    "ReportResultRequest": ("design_id",), "SelectParentsRequest": ("experiment",),
    "HeartbeatRequest": ("worker_id",), "LeaseJobRequest": ("worker_id",),
    "RenewLeaseRequest": ("job_id", "worker_id"),
    "ReportProgressRequest": ("worker_id", "progress"), "ProgressEvent": ("job_id",),
    "CompleteJobRequest": ("job_id", "worker_id"),
    "FailJobRequest": ("job_id", "worker_id"), "ReleaseJobRequest": ("job_id", "worker_id"),
    "CancelJobRequest": ("job_id",), "GetJobRequest": ("job_id",),
    "DeregisterWorkerRequest": ("worker_id",), "EnqueueDesignJobsRequest": ("experiment",),
    "GetBudgetRequest": ("experiment",), "SetBudgetRequest": ("experiment", "rung"),
    "CreateTokenRequest": ("name",), "RevokeTokenRequest": ("id",),
}.items()}
# Numbers that may be negative.
SIGNED = {P + "Benchmark.random_baseline", P + "RungResult.training_seed"}

MAX_INT = 2**63 - 1  # what SQLite and BSON store: uint64 values above it are refused
_NUMBER_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT,
                 FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64,
                 FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
                 FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_SFIXED64,
                 FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64,
                 FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64}


class RequestBounds:
    """Checks a request message against the rules above; the limits named by a
    LimitsConfig attribute come from the server's config."""

    def __init__(self, limits: LimitsConfig):
        self._text = {name: getattr(limits, v) if isinstance(v, str) else v
                      for name, v in TEXT_LIMITS.items()}

    def check(self, message: Message) -> None:
        self._message(message, "")
        self._required(message, "")

    def _required(self, message: Message, prefix: str) -> None:
        for name in REQUIRED.get(message.DESCRIPTOR.full_name, ()):
            value = getattr(message, name)
            if isinstance(value, Message):
                self._required(value, f"{prefix}{name}.")
            elif not value:
                raise InvalidArgument(prefix + name, "required")

    def _message(self, message: Message, prefix: str) -> None:
        if message.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
            if not 0 <= message.seconds <= MAX_TIMESTAMP_SECONDS or not 0 <= message.nanos < 10**9:
                raise InvalidArgument(prefix.rstrip("."), "timestamp out of range")
            return
        for field, value in message.ListFields():
            path = prefix + field.name
            if _is_map(field):
                self._map(field, value, path)
            elif field.is_repeated:
                limit = ITEM_LIMITS.get(field.full_name, ITEMS)
                if len(value) > limit:
                    raise InvalidArgument(path, f"{len(value)} entries > limit {limit}")
                for i, item in enumerate(value):
                    self._value(field, item, f"{path}[{i}]")
            else:
                self._value(field, value, path)

    def _map(self, field: FieldDescriptor, value, path: str) -> None:
        limit = ITEM_LIMITS.get(field.full_name, ITEMS)
        if len(value) > limit:
            raise InvalidArgument(path, f"{len(value)} entries > limit {limit}")
        entry: Descriptor = field.message_type
        value_field = entry.fields_by_name["value"]
        for key, item in value.items():
            if isinstance(key, str) and len(key) > KEY:
                raise InvalidArgument(path, f"a key of {len(key)} characters > limit {KEY}")
            where = f"{path}[{_brief(key)}]"
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                self._message(item, where + ".")
            elif isinstance(item, str):
                limit = self._text.get(field.full_name, TEXT)
                if len(item) > limit:
                    raise InvalidArgument(where, f"{len(item)} characters > limit {limit}")
            else:
                self._value(value_field, item, where, signed=True)

    def _value(self, field: FieldDescriptor, value, path: str, signed: bool = False) -> None:
        kind = field.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            self._message(value, path + ".")
        elif kind == FieldDescriptor.TYPE_STRING or kind == FieldDescriptor.TYPE_BYTES:
            limit = self._text.get(field.full_name, TEXT)
            if len(value) > limit:
                raise InvalidArgument(path, f"{len(value)} characters > limit {limit}")
        elif kind == FieldDescriptor.TYPE_ENUM:
            if value not in field.enum_type.values_by_number:
                raise InvalidArgument(path, f"{value} is not a {field.enum_type.name} value")
        elif kind in _NUMBER_TYPES:
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidArgument(path, f"not a finite number: {value}")
            if value < 0 and not signed and field.full_name not in SIGNED:
                raise InvalidArgument(path, f"must be >= 0 (got {value})")
            if value > MAX_INT:
                raise InvalidArgument(path, f"must be <= {MAX_INT}")


def _is_map(field: FieldDescriptor) -> bool:
    return (field.type == FieldDescriptor.TYPE_MESSAGE and field.is_repeated
            and field.message_type.GetOptions().map_entry)


def _brief(value, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."
