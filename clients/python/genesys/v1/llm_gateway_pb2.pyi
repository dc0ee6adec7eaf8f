from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LLMRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LLM_ROLE_UNSPECIFIED: _ClassVar[LLMRole]
    LLM_ROLE_PROPOSER: _ClassVar[LLMRole]
    LLM_ROLE_REVIEWER: _ClassVar[LLMRole]
    LLM_ROLE_PLANNER: _ClassVar[LLMRole]
    LLM_ROLE_CODER: _ClassVar[LLMRole]
    LLM_ROLE_OBSERVER: _ClassVar[LLMRole]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_OTHER: _ClassVar[FinishReason]

class ReplicaState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLICA_STATE_UNSPECIFIED: _ClassVar[ReplicaState]
    REPLICA_STATE_STARTING: _ClassVar[ReplicaState]
    REPLICA_STATE_HEALTHY: _ClassVar[ReplicaState]
    REPLICA_STATE_UNHEALTHY: _ClassVar[ReplicaState]
    REPLICA_STATE_STOPPED: _ClassVar[ReplicaState]
LLM_ROLE_UNSPECIFIED: LLMRole
LLM_ROLE_PROPOSER: LLMRole
LLM_ROLE_REVIEWER: LLMRole
LLM_ROLE_PLANNER: LLMRole
LLM_ROLE_CODER: LLMRole
LLM_ROLE_OBSERVER: LLMRole
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_OTHER: FinishReason
REPLICA_STATE_UNSPECIFIED: ReplicaState
REPLICA_STATE_STARTING: ReplicaState
REPLICA_STATE_HEALTHY: ReplicaState
REPLICA_STATE_UNHEALTHY: ReplicaState
REPLICA_STATE_STOPPED: ReplicaState

class ChatMessage(_message.Message):
    __slots__ = ("author", "content")
    class Author(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        AUTHOR_UNSPECIFIED: _ClassVar[ChatMessage.Author]
        AUTHOR_SYSTEM: _ClassVar[ChatMessage.Author]
        AUTHOR_USER: _ClassVar[ChatMessage.Author]
        AUTHOR_ASSISTANT: _ClassVar[ChatMessage.Author]
    AUTHOR_UNSPECIFIED: ChatMessage.Author
    AUTHOR_SYSTEM: ChatMessage.Author
    AUTHOR_USER: ChatMessage.Author
    AUTHOR_ASSISTANT: ChatMessage.Author
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    author: ChatMessage.Author
    content: str
    def __init__(self, author: _Optional[_Union[ChatMessage.Author, str]] = ..., content: _Optional[str] = ...) -> None: ...

class ChatInput(_message.Message):
    __slots__ = ("messages", "model", "role", "temperature", "top_p", "max_tokens", "stop", "seed", "json_schema", "caller", "experiment")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    model: str
    role: LLMRole
    temperature: float
    top_p: float
    max_tokens: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    json_schema: str
    caller: str
    experiment: str
    def __init__(self, messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., model: _Optional[str] = ..., role: _Optional[_Union[LLMRole, str]] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_tokens: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., json_schema: _Optional[str] = ..., caller: _Optional[str] = ..., experiment: _Optional[str] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class ChatRequest(_message.Message):
    __slots__ = ("input",)
    INPUT_FIELD_NUMBER: _ClassVar[int]
    input: ChatInput
    def __init__(self, input: _Optional[_Union[ChatInput, _Mapping]] = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("text", "model", "finish_reason", "usage", "request_id")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    text: str
    model: str
    finish_reason: FinishReason
    usage: TokenUsage
    request_id: str
    def __init__(self, text: _Optional[str] = ..., model: _Optional[str] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ChatStreamRequest(_message.Message):
    __slots__ = ("input",)
    INPUT_FIELD_NUMBER: _ClassVar[int]
    input: ChatInput
    def __init__(self, input: _Optional[_Union[ChatInput, _Mapping]] = ...) -> None: ...

class ChatStreamResponse(_message.Message):
    __slots__ = ("delta", "model", "finish_reason", "usage", "request_id")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    delta: str
    model: str
    finish_reason: FinishReason
    usage: TokenUsage
    request_id: str
    def __init__(self, delta: _Optional[str] = ..., model: _Optional[str] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReplicaInfo(_message.Message):
    __slots__ = ("url", "state", "outstanding", "launched", "last_error")
    URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_FIELD_NUMBER: _ClassVar[int]
    LAUNCHED_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    url: str
    state: ReplicaState
    outstanding: int
    launched: bool
    last_error: str
    def __init__(self, url: _Optional[str] = ..., state: _Optional[_Union[ReplicaState, str]] = ..., outstanding: _Optional[int] = ..., launched: _Optional[bool] = ..., last_error: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "roles", "max_context", "max_concurrency", "queue_size", "in_flight", "queued", "replicas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    roles: _containers.RepeatedScalarFieldContainer[LLMRole]
    max_context: int
    max_concurrency: int
    queue_size: int
    in_flight: int
    queued: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaInfo]
    def __init__(self, name: _Optional[str] = ..., roles: _Optional[_Iterable[_Union[LLMRole, str]]] = ..., max_context: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., queue_size: _Optional[int] = ..., in_flight: _Optional[int] = ..., queued: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaInfo, _Mapping]]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("caller", "experiment")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    caller: str
    experiment: str
    def __init__(self, caller: _Optional[str] = ..., experiment: _Optional[str] = ...) -> None: ...

class UsageRecord(_message.Message):
    __slots__ = ("caller", "experiment", "model", "requests", "errors", "prompt_tokens", "completion_tokens")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    caller: str
    experiment: str
    model: str
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, caller: _Optional[str] = ..., experiment: _Optional[str] = ..., model: _Optional[str] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[UsageRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[UsageRecord, _Mapping]]] = ...) -> None: ...
