import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LedgerOp(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEDGER_OP_UNSPECIFIED: _ClassVar[LedgerOp]
    LEDGER_OP_SET: _ClassVar[LedgerOp]
    LEDGER_OP_RESERVE: _ClassVar[LedgerOp]
    LEDGER_OP_COMMIT: _ClassVar[LedgerOp]
    LEDGER_OP_REFUND: _ClassVar[LedgerOp]
LEDGER_OP_UNSPECIFIED: LedgerOp
LEDGER_OP_SET: LedgerOp
LEDGER_OP_RESERVE: LedgerOp
LEDGER_OP_COMMIT: LedgerOp
LEDGER_OP_REFUND: LedgerOp

class RungBudget(_message.Message):
    __slots__ = ("rung", "total", "released", "reserved", "committed", "available")
    RUNG_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    rung: str
    total: int
    released: int
    reserved: int
    committed: int
    available: int
    def __init__(self, rung: _Optional[str] = ..., total: _Optional[int] = ..., released: _Optional[int] = ..., reserved: _Optional[int] = ..., committed: _Optional[int] = ..., available: _Optional[int] = ...) -> None: ...

class BudgetLedger(_message.Message):
    __slots__ = ("experiment", "rungs", "updated_at")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    RUNGS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    rungs: _containers.RepeatedCompositeFieldContainer[RungBudget]
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, experiment: _Optional[str] = ..., rungs: _Optional[_Iterable[_Union[RungBudget, _Mapping]]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("experiment", "rung", "op", "amount", "job_id", "time")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    RUNG_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    rung: str
    op: LedgerOp
    amount: int
    job_id: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, experiment: _Optional[str] = ..., rung: _Optional[str] = ..., op: _Optional[_Union[LedgerOp, str]] = ..., amount: _Optional[int] = ..., job_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetBudgetRequest(_message.Message):
    __slots__ = ("experiment", "include_entries", "entries_limit")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_LIMIT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    include_entries: bool
    entries_limit: int
    def __init__(self, experiment: _Optional[str] = ..., include_entries: _Optional[bool] = ..., entries_limit: _Optional[int] = ...) -> None: ...

class GetBudgetResponse(_message.Message):
    __slots__ = ("ledger", "entries")
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ledger: BudgetLedger
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    def __init__(self, ledger: _Optional[_Union[BudgetLedger, _Mapping]] = ..., entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ...) -> None: ...

class SetBudgetRequest(_message.Message):
    __slots__ = ("experiment", "rung", "total")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    RUNG_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    rung: str
    total: int
    def __init__(self, experiment: _Optional[str] = ..., rung: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class SetBudgetResponse(_message.Message):
    __slots__ = ("ledger",)
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    ledger: BudgetLedger
    def __init__(self, ledger: _Optional[_Union[BudgetLedger, _Mapping]] = ...) -> None: ...
