"""Every service reports its health truthfully and describes itself through reflection."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import grpc
import nats as nats_py
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from opentelemetry.sdk.trace import TracerProvider

from scripts.nats_process import NatsProcess
from services.runtime.health_client import check_health, wait_serving
from services.runtime.ports import free_port
from tests.conftest import ROOT
from tests.services.conftest import SERVICES, Running, ServiceKind, start

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
BUF = ROOT / "node_modules" / ".bin" / "buf"


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


async def test_drain_reports_not_serving_to_watchers(running: Running) -> None:
    health = health_pb2_grpc.HealthStub(running.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=running.kind.grpc_name))
    first = await watch.read()
    assert first.status == SERVING
    stopping = asyncio.create_task(running.service.stop(1.0))
    second = await asyncio.wait_for(watch.read(), timeout=5)
    assert second.status == NOT_SERVING
    await stopping


async def test_reflection_lists_every_service(running: Running) -> None:
    with grpc.insecure_channel(running.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        names = await asyncio.to_thread(database.get_services)
    assert set(names) >= {
        running.kind.grpc_name,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


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
    has connected with its stream declared (and the wallet's consumer is bound)."""
    nats = NatsProcess(tmp_path / "nats", port=free_port())
    service = await start(kind, database_url, tmp_path, tracer_provider, nats.url)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    try:
        await asyncio.sleep(1.0)  # several health probes (every 0.2 s here) have run
        assert await check_health(channel) == NOT_SERVING
        assert await check_health(channel, kind.grpc_name) == NOT_SERVING

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
