"""The BFF's own metrics: HTTP RED by route template, on BFF_METRICS_PORT, with exemplars."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bff.app import app_metrics, create_app
from bff.config import BffSettings
from bff.server import BffServer
from scripts.nats_process import NatsProcess
from services.catalogue.config import CatalogueSettings
from services.catalogue.server import create_server as create_catalogue
from services.runtime.ids import new_id
from services.runtime.ports import free_port
from services.runtime.serving import GrpcService

_OPEN_METRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}
_PRODUCT = "/v1/products/{product_id}"


@pytest.fixture
async def catalogue(tmp_path: Path, nats_server: NatsProcess) -> AsyncIterator[GrpcService]:
    """catalogue alone: the product pages need nothing else."""
    settings = CatalogueSettings(port=0, relay="task", data_dir=tmp_path, nats_url=nats_server.url)
    service = await create_catalogue(settings, TracerProvider())
    try:
        yield service
    finally:
        await service.stop(0)


def _settings(catalogue: GrpcService, **overrides: Any) -> BffSettings:
    return BffSettings(
        port=0,
        catalogue_addr=f"127.0.0.1:{catalogue.port}",
        # Nothing listens there: these tests call none of them.
        identity_addr=f"127.0.0.1:{free_port()}",
        wallet_addr=f"127.0.0.1:{free_port()}",
        orders_addr=f"127.0.0.1:{free_port()}",
        shutdown_grace_seconds=1,
        **overrides,
    )


async def test_requests_are_counted_by_route_template_and_served_with_trace_exemplars(
    catalogue: GrpcService,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(_settings(catalogue, metrics_port=0), tracer_provider=provider)
    server = BffServer(app, _settings(catalogue, metrics_port=0))
    port = await server.start()
    missing = new_id()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert (await http.get(f"/v1/products/{missing}")).status_code == 404
            assert (await http.get(f"/v1/nowhere/{missing}")).status_code == 404
            assert (await http.get("/livez")).status_code == 200
            assert (await http.request("TRACE", "/livez")).status_code == 405
            metrics_port = server.metrics.port
            assert metrics_port is not None
            exposition = (
                await http.get(f"http://127.0.0.1:{metrics_port}/metrics", headers=_OPEN_METRICS)
            ).text
    finally:
        await server.stop()

    metrics = app_metrics(app)
    assert metrics is server.metrics

    def requests(route: str, status: str, method: str = "GET") -> float:
        return metrics.value(
            "http_server_requests_total", {"route": route, "method": method, "status": status}
        )

    assert requests(_PRODUCT, "404") == 1
    assert requests("other", "404") == 1  # no route matched: never the raw path
    assert requests("/livez", "200") == 1
    assert requests("/livez", "405", method="other") == 1  # methods stay a bounded set
    assert missing not in exposition
    assert metrics.value("http_server_in_flight_requests") == 0
    assert 'superapp_build_info{commit="unknown",component="bff"' in exposition
    assert "superapp_event_loop_lag_seconds_bucket" in exposition

    [request_span] = [
        span
        for span in exporter.get_finished_spans()
        if span.kind is SpanKind.SERVER and span.name == f"GET {_PRODUCT}"
    ]
    exemplars = re.findall(
        r'http_server_request_duration_seconds_bucket\{le="[^"]+",method="GET",'
        r'route="/v1/products/\{product_id\}"\} 1\.0 # \{trace_id="([0-9a-f]{32})"\}',
        exposition,
    )
    assert exemplars == [format(request_span.context.trace_id, "032x")]


async def test_metrics_are_not_served_unless_a_port_is_set(catalogue: GrpcService) -> None:
    server = BffServer(create_app(_settings(catalogue)), _settings(catalogue))
    await server.start()
    try:
        assert server.metrics.port is None
    finally:
        await server.stop()


async def test_a_metrics_port_in_use_stops_the_start_with_the_setting_named(
    catalogue: GrpcService,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = _settings(catalogue, metrics_port=taken.getsockname()[1])
        server = BffServer(create_app(settings), settings)
        with pytest.raises(RuntimeError, match="BFF_METRICS_PORT: cannot listen on"):
            await server.start()
