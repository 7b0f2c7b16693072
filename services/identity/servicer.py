"""IdentityService over gRPC: translates proto ⇄ domain, nothing more.

RPCs this release does not serve yet fall through to the generated base class,
which the error interceptor answers with UNIMPLEMENTED.
"""

from __future__ import annotations

from superapp.identity.v1 import identity_service_pb2_grpc

__all__ = ["IdentityServicer"]


class IdentityServicer(identity_service_pb2_grpc.IdentityServiceServicer):
    """The identity gRPC service."""
