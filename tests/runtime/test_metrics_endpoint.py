"""Every service process serves its metrics on `<PREFIX>_METRICS_PORT`, apart from gRPC."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc

from scripts.nats_process import NatsProcess
from services.catalogue.config import CatalogueSettings
from services.catalogue.server import create_server
from services.runtime.serving import StartupError
from tests.conftest import http_client


async def test_a_service_serves_prometheus_text_and_openmetrics_on_its_metrics_port(
    tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    settings = CatalogueSettings(
        port=0,
        metrics_port=0,
        relay="task",
        data_dir=tmp_path,
        nats_url=nats_server.url,
    )
    service = await create_server(settings, tracer_provider)
    try:
        port = service.metrics.port
        assert port is not None
        assert port != service.port
        async with http_client() as http:
            text = await http.get(f"http://127.0.0.1:{port}/metrics")
            open_metrics = await http.get(
                f"http://127.0.0.1:{port}/metrics",
                headers={"Accept": "application/openmetrics-text; version=1.0.0"},
            )
        assert text.status_code == 200
        assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'superapp_build_info{commit="unknown",component="catalogue"' in text.text
        assert "process_cpu_seconds_total" in text.text
        assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
        assert open_metrics.text.rstrip().endswith("# EOF")
    finally:
        await service.stop(0)
    async with http_client() as http:
        with pytest.raises(httpx.TransportError):  # released with the service
            await http.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


async def test_a_metrics_port_in_use_stops_the_start_with_the_setting_named(
    tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = CatalogueSettings(
            port=0,
            metrics_port=taken.getsockname()[1],
            relay="task",
            data_dir=tmp_path,
            nats_url=nats_server.url,
        )
        with pytest.raises(StartupError, match="CATALOGUE_METRICS_PORT: cannot listen on"):
            await create_server(settings, tracer_provider)


@pytest.mark.parametrize("enabled", [True, False])
async def test_metrics_enabled_false_records_nothing_but_the_build_and_the_process(
    tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess, enabled: bool
) -> None:
    settings = CatalogueSettings(
        port=0,
        metrics_port=0,
        metrics_enabled=enabled,
        relay="task",
        data_dir=tmp_path,
        nats_url=nats_server.url,
    )
    service = await create_server(settings, tracer_provider)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = catalogue_service_pb2_grpc.CatalogueServiceStub(channel)
            await stub.ListCategories(catalogue_pb.ListCategoriesRequest())
        async with http_client() as http:
            text = (await http.get(f"http://127.0.0.1:{service.metrics.port}/metrics")).text
    finally:
        await service.stop(0)
    assert 'component="catalogue"' in text
    assert "process_cpu_seconds_total" in text
    handled = 'grpc_server_handled_total{grpc_code="OK",grpc_method="ListCategories"'
    assert (handled in text) is enabled
    assert ("superapp_db_" in text) is enabled
