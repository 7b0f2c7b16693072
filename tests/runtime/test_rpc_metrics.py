"""RED metrics of RPCs: counted by the status a caller sees, timed, with trace exemplars."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc as catalogue_grpc

from scripts.nats_process import NatsProcess
from services.catalogue.config import CatalogueSettings
from services.catalogue.server import SERVICE_NAME as CATALOGUE
from services.catalogue.server import create_server
from services.runtime.errors import NotFound
from services.runtime.guarded_server import GuardedServer
from services.runtime.ids import new_id
from services.runtime.metrics import Metrics
from services.runtime.rich_status import ErrorGuard
from services.runtime.rpc_metrics import RpcMetrics
from services.runtime.tracing import tracer_provider_from_env
from tests.conftest import http_client

_OPEN_METRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


class _Calls:
    """Handlers ending each way a call can end; `Slow` waits until released."""

    def __init__(self) -> None:
        self.slow_started = asyncio.Event()
        self.release = asyncio.Event()

    async def echo(self, request: bytes, _context: Any) -> bytes:
        return request

    async def missing(self, _request: bytes, _context: Any) -> bytes:
        raise NotFound("THING_NOT_FOUND", "no such thing")

    async def broken(self, _request: bytes, _context: Any) -> bytes:
        raise ValueError("a bug")

    async def slow(self, request: bytes, _context: Any) -> bytes:
        self.slow_started.set()
        await self.release.wait()
        return request


async def test_each_call_is_counted_by_the_status_its_caller_sees() -> None:
    metrics = Metrics("test")
    calls = _Calls()
    server = GuardedServer(grpc.aio.server(), [RpcMetrics(metrics), ErrorGuard("test.superapp")])
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.v1.Things",
                {
                    name: grpc.unary_unary_rpc_method_handler(behavior)
                    for name, behavior in (
                        ("Echo", calls.echo),
                        ("Missing", calls.missing),
                        ("Broken", calls.broken),
                        ("Slow", calls.slow),
                    )
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    def value(name: str, method: str, **labels: str) -> float:
        return metrics.value(
            name, {"grpc_service": "test.v1.Things", "grpc_method": method, **labels}
        )

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:

            async def call(method: str, deadline: float = 30) -> grpc.StatusCode:
                stub: Any = channel.unary_unary(f"/test.v1.Things/{method}")
                try:
                    await stub(b"x", timeout=deadline)
                except grpc.aio.AioRpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            assert await call("Echo") is grpc.StatusCode.OK
            assert await call("Echo") is grpc.StatusCode.OK
            assert await call("Missing") is grpc.StatusCode.NOT_FOUND
            assert await call("Broken") is grpc.StatusCode.INTERNAL

            slow = asyncio.create_task(call("Slow"))
            await asyncio.wait_for(calls.slow_started.wait(), timeout=30)
            assert value("grpc_server_in_flight", "Slow") == 1
            calls.release.set()
            assert await slow is grpc.StatusCode.OK

            calls.release.clear()
            calls.slow_started.clear()
            assert await call("Slow", deadline=0.5) is grpc.StatusCode.DEADLINE_EXCEEDED
            # The server learns of the deadline on its own, later on a loaded machine;
            # releasing the handler before that would let it finish OK.
            for _ in range(600):
                if value("grpc_server_handled_total", "Slow", grpc_code="DEADLINE_EXCEEDED"):
                    break
                await asyncio.sleep(0.05)
            calls.release.set()
    finally:
        await server.stop(None)

    assert value("grpc_server_started_total", "Echo") == 2
    assert value("grpc_server_handled_total", "Echo", grpc_code="OK") == 2
    assert value("grpc_server_handled_total", "Missing", grpc_code="NOT_FOUND") == 1
    assert value("grpc_server_handled_total", "Broken", grpc_code="INTERNAL") == 1
    assert value("grpc_server_handled_total", "Slow", grpc_code="OK") == 1
    assert value("grpc_server_handled_total", "Slow", grpc_code="DEADLINE_EXCEEDED") == 1
    assert value("grpc_server_in_flight", "Slow") == 0
    assert value("grpc_server_handling_seconds_count", "Echo") == 2
    assert value("grpc_server_handling_seconds_bucket", "Echo", le="+Inf") == 2
    assert value("grpc_server_handling_seconds_count", "Slow") == 2


async def _scrape(port: int) -> str:
    async with http_client() as http:
        reply = await http.get(f"http://127.0.0.1:{port}/metrics", headers=_OPEN_METRICS)
    assert reply.status_code == 200
    return reply.text


async def _catalogue_get_missing_product(
    tmp_path: Path, nats_server: NatsProcess, tracer_provider: TracerProvider
) -> str:
    """Start catalogue, ask for a product that does not exist, scrape; the exposition."""
    settings = CatalogueSettings(
        port=0, metrics_port=0, relay="task", data_dir=tmp_path, nats_url=nats_server.url
    )
    service = await create_server(settings, tracer_provider)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = catalogue_grpc.CatalogueServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetProduct(catalogue_pb.GetProductRequest(product_id=new_id()))
            assert refused.value.code() is grpc.StatusCode.NOT_FOUND
        assert service.metrics.port is not None
        return await _scrape(service.metrics.port)
    finally:
        await service.stop(0)


async def test_a_service_counts_a_not_found_call_and_links_its_trace(
    tmp_path: Path, nats_server: NatsProcess
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    exposition = await _catalogue_get_missing_product(tmp_path, nats_server, provider)

    method = f'grpc_method="GetProduct",grpc_service="{CATALOGUE}"'
    assert f'grpc_server_handled_total{{grpc_code="NOT_FOUND",{method}}} 1.0' in exposition
    assert f"grpc_server_started_total{{{method}}} 1.0" in exposition
    [server_span] = [
        span
        for span in exporter.get_finished_spans()
        if span.kind is SpanKind.SERVER and span.name.endswith("/GetProduct")
    ]
    trace_id = format(server_span.context.trace_id, "032x")
    exemplars = re.findall(
        rf'grpc_server_handling_seconds_bucket\{{{method},le="[^"]+"\}} 1\.0 # '
        rf'\{{trace_id="([0-9a-f]{{32}})"\}}',
        exposition,
    )
    assert exemplars == [trace_id]


async def test_no_exemplar_points_at_a_trace_that_was_not_exported(
    tmp_path: Path, nats_server: NatsProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    provider = tracer_provider_from_env("catalogue")

    exposition = await _catalogue_get_missing_product(tmp_path, nats_server, provider)

    assert 'grpc_code="NOT_FOUND",grpc_method="GetProduct"' in exposition
    assert "trace_id" not in exposition
