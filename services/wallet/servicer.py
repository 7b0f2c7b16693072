"""WalletService over gRPC: translates proto ⇄ domain, nothing more.

RPCs this release does not serve yet fall through to the generated base class,
which the error interceptor answers with UNIMPLEMENTED.
"""

from __future__ import annotations

from superapp.wallet.v1 import wallet_service_pb2_grpc

__all__ = ["WalletServicer"]


class WalletServicer(wallet_service_pb2_grpc.WalletServiceServicer):
    """The wallet gRPC service."""
