"""Errors raised by the coordinator's logic; rpc.py maps each to its gRPC status code and
to the standard rich error model (google.rpc.Status with details): every error carries an
ErrorInfo (domain `genesys.v1`, a `reason` in UPPER_SNAKE_CASE, metadata such as
`existing_id`), and INVALID_ARGUMENT also a BadRequest naming the field."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

DOMAIN = "genesys.v1"
MESSAGE_CHARS = 1000  # status messages never echo more of a request than this


def brief(value: object, limit: int = 64) -> str:
    """A value for an error message: repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ServiceError(Exception):
    code = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"

    def __init__(self, message: str, **metadata: str):
        self.metadata = metadata
        super().__init__(message)

    def details(self) -> list:
        """The google.rpc detail messages of this error."""
        return [error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN,
                                            metadata=self.metadata)]

    def status(self) -> status_pb2.Status:
        message = str(self)
        if len(message) > MESSAGE_CHARS:
            message = message[: MESSAGE_CHARS - 3] + "..."
        status = status_pb2.Status(code=self.code.value[0], message=message)
        for detail in self.details():
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        return status


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field[:200], problem[:MESSAGE_CHARS]
        super().__init__(f"{self.field}: {self.problem}", field=self.field)

    def details(self) -> list:
        violation = error_details_pb2.BadRequest.FieldViolation(field=self.field,
                                                                description=self.problem)
        return [*super().details(), error_details_pb2.BadRequest(field_violations=[violation])]


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class DuplicateDesign(AlreadyExists):
    reason = "DUPLICATE_DESIGN"

    def __init__(self, existing_id: str, digest: str):
        self.existing_id = existing_id
        super().__init__(f"design with digest {digest[:16]}... already exists: {existing_id}",
                         existing_id=existing_id, digest=digest)


class FunctionalDuplicate(DuplicateDesign):
    """Another design of the experiment behaves the same (the checker's fingerprint)."""

    reason = "FUNCTIONAL_DUPLICATE"

    def __init__(self, existing_id: str, fingerprint: str):
        self.existing_id = existing_id
        AlreadyExists.__init__(self, f"design with the same behaviour (fingerprint "
                                     f"{fingerprint[:16]}...) already exists: {existing_id}",
                               existing_id=existing_id, fingerprint=fingerprint)


class JobProducedDesign(AlreadyExists):
    reason = "JOB_PRODUCED_DESIGN"

    def __init__(self, job_id: str, design_id: str):
        self.existing_id = design_id
        super().__init__(f"job {job_id} already produced design {design_id} (one per job)",
                         existing_id=design_id, job_id=job_id)


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "BUDGET_EXHAUSTED"


def check_range(field: str, value: float, low: float, high: float) -> None:
    """InvalidArgument unless low <= value <= high (NaN included)."""
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be within [{low}, {high}]")
