"""The channel policy of every caller: balancing over healthy replicas, a deadline on every
call, retries only for reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from superapp.catalogue.v1 import catalogue_service_pb2
from superapp.identity.v1 import identity_service_pb2
from superapp.wallet.v1 import wallet_service_pb2

from services.runtime.channels import HEALTH_SERVICE, open_channel, service_config
from services.runtime.serving import HANDOVER_SECONDS

SERVICES = [
    identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"],
    wallet_service_pb2.DESCRIPTOR.services_by_name["WalletService"],
    catalogue_service_pb2.DESCRIPTOR.services_by_name["CatalogueService"],
]


def _policy(service_name: str, method: str, configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The method config gRPC applies: an exact method match wins over the service's."""
    for wanted in ({"service": service_name, "method": method}, {"service": service_name}):
        for config in configs:
            if wanted in config["name"]:
                return config
    raise AssertionError(f"no method config for {service_name}/{method}")


def test_every_method_has_a_deadline_and_only_reads_are_retried() -> None:
    for service in SERVICES:
        configs = json.loads(service_config([service], 2.5))["methodConfig"]
        for method in service.methods:
            policy = _policy(service.full_name, method.name, configs)
            assert policy["timeout"] == "2.500000000s", method.full_name
            # Identity's IntrospectMiniAppToken (RFC 7662) reads too.
            read = method.name.startswith(("Get", "List", "Search", "Introspect"))
            assert ("retryPolicy" in policy) is read, method.full_name
            if read:
                assert policy["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
        assert _policy(HEALTH_SERVICE, "Check", configs)["timeout"] == "2.500000000s"


def test_mutations_that_are_idempotent_by_request_id_are_still_not_retried() -> None:
    wallet = SERVICES[1]
    configs = json.loads(service_config([wallet], 5))["methodConfig"]
    for name in ("CreditWallet", "CreateTransfer", "CreateHold", "CaptureHold", "VoidHold"):
        assert "retryPolicy" not in _policy(wallet.full_name, name, configs), name


class _Replica:
    """A gRPC server that answers `/test.Echo/Who` with its name and reports health."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server = grpc.aio.server()
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)

        async def who(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            return name.encode()

        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "test.Echo",
                    {
                        "Who": grpc.unary_unary_rpc_method_handler(
                            who, request_deserializer=bytes, response_serializer=bytes
                        )
                    },
                ),
            )
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    async def start(self, status: int = health_pb2.HealthCheckResponse.SERVING) -> None:
        await self.server.start()
        await self.health.set("", status)


@pytest.fixture
async def replicas() -> AsyncIterator[list[_Replica]]:
    """Two replicas of one service, SERVING."""
    started = [_Replica("a"), _Replica("b")]
    for replica in started:
        await replica.start()
    yield started
    for replica in started:
        await replica.server.stop(0)


async def _answers(channel: grpc.aio.Channel, calls: int) -> list[str]:
    who = channel.unary_unary(
        "/test.Echo/Who", request_serializer=bytes, response_deserializer=bytes
    )
    return [(await who(b"")).decode() for _ in range(calls)]


async def _until_answered_by(channel: grpc.aio.Channel, names: set[str]) -> None:
    """Until six calls in a row are answered by exactly `names`."""
    async with asyncio.timeout(30):
        while True:
            if set(await _answers(channel, 6)) == names:
                return
            await asyncio.sleep(0.05)


async def test_calls_are_spread_over_every_replica_of_an_address_list(
    replicas: list[_Replica],
) -> None:
    target = "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in replicas)
    async with open_channel(target, SERVICES, timeout_seconds=5) as channel:
        answers = await _answers(channel, 20)
    assert set(answers) == {"a", "b"}
    assert abs(answers.count("a") - answers.count("b")) <= 2  # round robin, not first-pick


async def test_a_replica_that_is_not_serving_gets_no_calls_until_it_is_again(
    replicas: list[_Replica],
) -> None:
    a, b = replicas
    target = f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}"
    async with open_channel(target, SERVICES, timeout_seconds=5) as channel:
        assert set(await _answers(channel, 10)) == {"a", "b"}
        await a.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        await _until_answered_by(channel, {"b"})
        assert set(await _answers(channel, 20)) == {"b"}

        await a.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await _until_answered_by(channel, {"a", "b"})


async def test_a_draining_replica_hands_its_share_to_the_others_without_failures(
    replicas: list[_Replica],
) -> None:
    a, b = replicas
    target = f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}"
    async with open_channel(target, SERVICES, timeout_seconds=5) as channel:
        assert set(await _answers(channel, 10)) == {"a", "b"}

        # What GrpcService.stop does: NOT_SERVING for good, the handover, then stop
        # with a grace.
        async def stop() -> None:
            await a.health.enter_graceful_shutdown()
            await asyncio.sleep(HANDOVER_SECONDS)
            await a.server.stop(2.0)

        stopping = asyncio.create_task(stop())
        answers: list[str] = []
        while not stopping.done():  # every call answered until a has stopped, none failed
            answers += await _answers(channel, 1)
        await stopping
        assert "b" in answers
        assert await _answers(channel, 20) == ["b"] * 20
