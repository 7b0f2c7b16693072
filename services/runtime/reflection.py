"""gRPC server reflection over both protocols: `grpc.reflection.v1` and `v1alpha`.

grpcurl and buf curl ask for v1 first, but grpcio-reflection implements only v1alpha
(grpc/grpc#38576). The two protocols are the same messages in different packages, so
the wire bytes are identical: one servicer and one handler serve both service names, as
grpc-java serves v1alpha with its v1 handler. For clients
that describe the reflection service itself, v1's file descriptor is v1alpha's with the
package renamed, added to the pool the servicer reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

__all__ = ["V1ALPHA_SERVICE_NAME", "V1_SERVICE_NAME", "enable_reflection"]

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1ALPHA_PACKAGE = reflection_pb2.DESCRIPTOR.package
_V1_PACKAGE = "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"  # its name in grpc-proto


def _v1_file() -> descriptor_pb2.FileDescriptorProto:
    """v1's file descriptor, derived from v1alpha's: same messages, package v1."""
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    file.name = _V1_FILE
    file.package = _V1_PACKAGE
    file.ClearField("options")  # v1alpha's options mark the file deprecated
    old, new = f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in file.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name.removeprefix(old)
    for service in file.service:
        for method in service.method:
            method.input_type = new + method.input_type.removeprefix(old)
            method.output_type = new + method.output_type.removeprefix(old)
    return file


def _describe_v1(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(_V1_FILE)
    except KeyError:
        pool.Add(_v1_file())


def enable_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Serve reflection (v1 and v1alpha) listing `service_names` and both protocols.

    The descriptors come from the default pool, where the generated modules of every
    listed service have registered themselves.
    """
    pool = descriptor_pool.Default()
    _describe_v1(pool)
    servicer = reflection.aio.ReflectionServicer(
        [*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME], pool=pool
    )
    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    for name in (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME):
        server.add_registered_method_handlers(name, handlers)
