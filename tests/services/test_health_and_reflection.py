"""Every service reports its health truthfully and describes itself through reflection.

The tests that only ask (health, reflection) share one server per service and backend
for the module: none changes what the others see. The one that stops its server, and
those that start theirs without NATS, start their own.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import nats as nats_py
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from opentelemetry.sdk.trace import TracerProvider

from scripts.nats_process import NatsProcess
from services.runtime.health import LIVENESS
from services.runtime.health_client import check_health, wait_serving
from services.runtime.ports import free_port
from tests.conftest import ROOT, empty_database
from tests.services.conftest import SERVICES, Running, ServiceKind, serve, start

pytestmark = pytest.mark.slow(seconds=45)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _buf() -> Path:
    """buf's own binary, which npm installs for this platform alone: `.bin/buf` is a
    Node script that starts it, a tenth of a CPU-second a call."""
    native = sorted((ROOT / "node_modules" / "@bufbuild").glob("buf-*/bin/buf"))
    return native[0] if native else ROOT / "node_modules" / ".bin" / "buf"


BUF = _buf()
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsProcess]:
    """A nats-server for this module's shared servers alone (see `own_nats` on why a
    wallet should not share the session's)."""
    with NatsProcess(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(
            (kind, backend),
            id=f"{kind.name}-{backend}",
            marks=[pytest.mark.postgres] if backend == "postgresql" else [],
        )
        for backend in ("sqlite", "postgresql")
        for kind in SERVICES
    ],
)
async def running(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    module_nats: NatsProcess,
) -> AsyncIterator[Running]:
    """Every service in turn, on every database backend (an empty database of its own),
    started once for the tests that only ask it: they must leave it as they found it."""
    kind, backend = request.param
    directory = tmp_path_factory.mktemp(f"{kind.name}-{backend}")
    async with (
        empty_database(backend, directory) as url,
        serve(kind, url, directory, TracerProvider(), module_nats.url) as it,
    ):
        yield it


@pytest.fixture(params=SERVICES, ids=lambda kind: kind.name)
async def stoppable(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
    tracer_provider: TracerProvider,
    own_nats: NatsProcess,
) -> AsyncIterator[Running]:
    """Every service in turn, on every database backend, for a test that stops it."""
    async with serve(request.param, database_url, tmp_path, tracer_provider, own_nats.url) as it:
        yield it


async def test_reports_serving_overall_and_per_service(running: Running) -> None:
    health = health_pb2_grpc.HealthStub(running.channel)
    for name in ("", running.kind.grpc_name):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == SERVING, name


async def test_unknown_health_service_is_not_found(running: Running) -> None:
    health = health_pb2_grpc.HealthStub(running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_drain_reports_not_serving_to_watchers(stoppable: Running) -> None:
    health = health_pb2_grpc.HealthStub(stoppable.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=stoppable.kind.grpc_name))
    first = await watch.read()
    assert first.status == SERVING
    stopping = asyncio.create_task(stoppable.service.stop(1.0))
    second = await asyncio.wait_for(watch.read(), timeout=5)
    assert second.status == NOT_SERVING
    await stopping


async def test_reflection_lists_every_service(running: Running) -> None:
    with grpc.insecure_channel(running.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        names = await asyncio.to_thread(database.get_services)
    assert set(names) == {
        running.kind.grpc_name,
        "grpc.health.v1.Health",
        REFLECTION_V1,
        REFLECTION_V1ALPHA,
    }


async def _reflect_v1(
    channel: grpc.aio.Channel, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    """A raw call of the v1 protocol. Its messages are v1alpha's on the wire (only the
    package differs), so v1alpha's classes encode and decode them."""
    call = channel.stream_stream(
        f"/{REFLECTION_V1}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return [reply async for reply in call(iter(requests))]


async def test_reflection_v1_answers_a_raw_call(running: Running) -> None:
    listed, described, unknown = await _reflect_v1(
        running.channel,
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=REFLECTION_V1),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Service"),
    )

    names = {service.name for service in listed.list_services_response.service}
    assert {running.kind.grpc_name, REFLECTION_V1, REFLECTION_V1ALPHA} <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in described.file_descriptor_response.file_descriptor_proto
    ]
    [v1] = [f for f in files if f.package == "grpc.reflection.v1"]
    assert v1.name == "grpc/reflection/v1/reflection.proto"
    [method] = v1.service[0].method
    assert (v1.service[0].name, method.name) == ("ServerReflection", "ServerReflectionInfo")
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    assert method.output_type == ".grpc.reflection.v1.ServerReflectionResponse"
    assert unknown.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


async def _buf_curl(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(BUF),
        "curl",
        "--protocol=grpc",
        "--http2-prior-knowledge",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "BUF_CACHE_DIR": str(ROOT / ".venv" / "buf-cache")},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("protocol", ["grpc-v1", "grpc-v1alpha"])
async def test_buf_curl_lists_the_services_over_either_reflection_protocol(
    running: Running, protocol: str
) -> None:
    base = f"http://{running.address}"
    code, out, err = await _buf_curl("--reflect-protocol", protocol, "--list-services", base)
    assert code == 0, err
    assert set(out.split()) == {
        running.kind.grpc_name,
        "grpc.health.v1.Health",
        REFLECTION_V1,
        REFLECTION_V1ALPHA,
    }
    # Every listed service resolves to its descriptor, the v1 reflection service too.
    code, out, err = await _buf_curl("--reflect-protocol", protocol, "--list-methods", base)
    assert code == 0, err
    assert f"{REFLECTION_V1}/ServerReflectionInfo" in out.split()


async def test_buf_curl_describes_and_calls_through_reflection_alone(running: Running) -> None:
    base = f"http://{running.address}"
    code, out, err = await _buf_curl("--list-methods", base)
    assert code == 0, err
    assert f"{running.kind.grpc_name}/" in out
    code, out, err = await _buf_curl(f"{base}/grpc.health.v1.Health/Check")
    assert code == 0, err
    assert json.loads(out) == {"status": "SERVING"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_buf_curl_calls_a_catalogue_rpc_and_reads_its_error(catalogue: Running) -> None:
    method = f"http://{catalogue.address}/superapp.catalogue.v1.CatalogueService"
    code, out, err = await _buf_curl("-d", '{"pageSize": 10}', f"{method}/ListCategories")
    assert (code, json.loads(out)) == (0, {}), err
    code, out, err = await _buf_curl("-d", '{"categoryId": "nope"}', f"{method}/GetCategory")
    assert code != 0
    reply = json.loads(out or err)
    assert reply["code"] == "invalid_argument"
    assert [d["type"] for d in reply["details"]] == [
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
    ]


@pytest.mark.parametrize("kind", SERVICES, ids=lambda kind: kind.name)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_not_serving_until_its_events_can_flow(
    kind: ServiceKind, database_url: str, tmp_path: Path, tracer_provider: TracerProvider
) -> None:
    """NATS is away at start: the service answers, but says NOT_SERVING until its relay
    has connected with its stream declared (and the wallet's consumer is bound). It is
    alive all along: a liveness probe must not restart it for a dependency."""
    nats = NatsProcess(tmp_path / "nats", port=free_port())
    service = await start(kind, database_url, tmp_path, tracer_provider, nats.url)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    try:
        await asyncio.sleep(1.0)  # several health probes (every 0.2 s here) have run
        assert await check_health(channel) == NOT_SERVING
        assert await check_health(channel, kind.grpc_name) == NOT_SERVING
        assert await check_health(channel, LIVENESS) == SERVING

        nats.start()
        async with asyncio.timeout(60):
            await wait_serving(channel, kind.grpc_name)
        client = await nats_py.connect(nats.url)
        try:
            streams = {info.config.name for info in await client.jetstream().streams_info()}
        finally:
            await client.close()
        assert f"SUPERAPP_{kind.name.upper()}" in streams
    finally:
        await channel.close()
        await service.stop(0)
        nats.stop()
