"""A deployment with metrics turned off, to price the metrics beside the usual one.

Its services record nothing (`<PREFIX>_METRICS_ENABLED=false`). They run beside the
bench's usual ones, so they get a nats-server and an identity of their own: on the
shared server, a second wallet would bind the same durable consumer as the first and
take half of identity's events (half the wallets would open in the other one).
"""

from __future__ import annotations

from scripts.benchmark.environment import Environment
from scripts.benchmark.scenario import Target

__all__ = ["METRICS_COST", "metrics_off_settings"]

METRICS_COST = Target("ratio", at_most=1 / 0.95, source="metrics cost at most 5% of throughput")
"""The target of a metrics-off row against its metrics-on ceiling: off runs at most
1/0.95 times as fast as on."""

_DEPLOYMENT = "metrics-off"


async def metrics_off_settings(env: Environment, service: str) -> dict[str, str]:
    """`service`'s settings in the metrics-off deployment (add its database to them)."""
    nats = env.nats_url(_DEPLOYMENT)
    identity = await env.service(
        "identity", {"IDENTITY_NATS_URL": nats, "IDENTITY_METRICS_ENABLED": "false"}
    )
    prefix = f"{service.upper()}_"
    return {
        f"{prefix}NATS_URL": nats,
        f"{prefix}IDENTITY_ADDR": identity,
        f"{prefix}METRICS_ENABLED": "false",
    }
