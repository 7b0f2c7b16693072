"""How every caller of our services opens its long-lived gRPC channels: the BFF to each
service, each service to identity's keys, orders to the wallet and the catalogue.

The policy lives in the channel's gRPC service config, so it holds for every call made on
the channel without any per-call Python code:

- calls are spread over every address the target names (`round_robin`): a Kubernetes
  headless Service's DNS name (`dns:///wallet:7102`), an address list
  (`ipv4:127.0.0.1:7102,127.0.0.1:7112`), or one `host:port`;
- only to replicas that report SERVING: the channel watches each address's
  `grpc.health.v1` status (client-side health checking), so a replica that is starting,
  has lost its database or is draining gets no new calls;
- every method gets a default deadline (`timeout`); a call that passes a shorter
  `timeout=` keeps its own (gRPC applies the earlier of the two);
- only the methods the contract marks `idempotency_level = NO_SIDE_EFFECTS` are retried,
  and only on UNAVAILABLE. Mutations are never retried by the channel, even though they
  are idempotent by `request_id`: whether to try again is the caller's decision.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import ServiceDescriptor
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.trace import TracerProvider

__all__ = ["HEALTH_SERVICE", "open_channel", "service_config"]

HEALTH_SERVICE = "grpc.health.v1.Health"

_RETRY_POLICY = {
    "maxAttempts": 3,
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


# gRPC's default reconnect backoff starts at 1 s and grows to 2 min: far too slow to
# notice that a restarted upstream is back. Calls fail fast meanwhile (no wait_for_ready).
_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def _duration(seconds: float) -> str:
    return f"{seconds:.9f}s"


def _reads(service: ServiceDescriptor) -> list[str]:
    side_effect_free = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    return [
        method.name
        for method in service.methods
        if method.GetOptions().idempotency_level == side_effect_free
    ]


def service_config(services: Sequence[ServiceDescriptor], timeout_seconds: float) -> str:
    """The service config JSON: round_robin over healthy addresses, a deadline on every
    method, retries on the reads."""
    timeout = _duration(timeout_seconds)
    configs: list[dict[str, Any]] = [
        {
            "name": [{"service": service.full_name} for service in services]
            + [{"service": HEALTH_SERVICE}],
            "timeout": timeout,
        }
    ]
    reads = [
        {"service": service.full_name, "method": method}
        for service in services
        for method in _reads(service)
    ]
    if reads:
        # A method-level entry wins over the service-level one above.
        configs.append({"name": reads, "timeout": timeout, "retryPolicy": _RETRY_POLICY})
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            # "" is the server's overall status, which follows all of its services.
            "healthCheckConfig": {"serviceName": ""},
            "methodConfig": configs,
        }
    )


def open_channel(
    target: str,
    services: Sequence[ServiceDescriptor],
    *,
    timeout_seconds: float,
    tracer_provider: TracerProvider | None = None,
    max_message_bytes: int | None = None,
) -> grpc.aio.Channel:
    """A channel to `target` with the service config for `services`.

    With a `tracer_provider`, OpenTelemetry's client interceptors make a span per call
    and send the W3C trace context upstream; without one the channel has no
    interceptors at all (they cost a measurable share of a cheap call).
    `max_message_bytes` raises gRPC's 4 MiB receive limit (and sets the send limit) for
    a service whose contract carries larger messages (miniapps' 8 MiB bundles).
    """
    sizes: list[tuple[str, int]] = []
    if max_message_bytes is not None:
        sizes = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
    interceptors: list[grpc.aio.ClientInterceptor] = []
    if tracer_provider is not None:
        interceptors = aio_client_interceptors(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]  # unannotated upstream
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.service_config", service_config(services, timeout_seconds)),
            ("grpc.enable_retries", 1),
            *_RECONNECT,
            *sizes,
        ],
        interceptors=interceptors,
    )
