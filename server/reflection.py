"""Server reflection under both service names (grpc.reflection.v1, which grpcurl and most
tools ask first, and v1alpha), resolving method symbols too: `grpcurl describe
genesys.v1.SchedulerService.CompleteJob` works. The two versions share their messages on
the wire, so one servicer answers both."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1 = "grpc.reflection.v1.ServerReflection"


class _MethodAwarePool:
    """The default descriptor pool, where `Service.Method` names the service's file."""

    def __init__(self):
        self._pool = descriptor_pool.Default()

    def FindFileContainingSymbol(self, name: str) -> FileDescriptor:  # noqa: N802 (pool API)
        try:
            return self._pool.FindFileContainingSymbol(name)
        except KeyError:
            service_name, _, method = name.rpartition(".")
            service = self._pool.FindServiceByName(service_name)  # KeyError: not found
            if method not in service.methods_by_name:
                raise
            return service.file

    def __getattr__(self, name: str):
        return getattr(self._pool, name)


def enable_reflection(server: grpc.aio.Server, service_names: list[str]) -> None:
    names = [*service_names, V1, reflection.SERVICE_NAME]
    servicer = reflection.aio.ReflectionServicer(names, pool=_MethodAwarePool())
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        V1, {"ServerReflectionInfo": v1}),))
