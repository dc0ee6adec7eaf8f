"""Errors raised by the coordinator's logic; rpc.py maps each to its gRPC status code."""

from __future__ import annotations

import grpc


class ServiceError(Exception):
    code = grpc.StatusCode.INTERNAL


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"{field}: {problem}")


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS


class DuplicateDesign(AlreadyExists):
    def __init__(self, existing_id: str, digest: str):
        self.existing_id = existing_id
        super().__init__(f"design with digest {digest[:16]}... already exists: {existing_id}")


class FunctionalDuplicate(DuplicateDesign):
    """Another design of the experiment behaves the same (the checker's fingerprint)."""

    def __init__(self, existing_id: str, fingerprint: str):
        self.existing_id = existing_id
        AlreadyExists.__init__(self, f"design with the same behaviour (fingerprint "
                                     f"{fingerprint[:16]}...) already exists: {existing_id}")


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


def check_range(field: str, value: float, low: float, high: float) -> None:
    """InvalidArgument unless low <= value <= high (NaN included)."""
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be within [{low}, {high}]")
