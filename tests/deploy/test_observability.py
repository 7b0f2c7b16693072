"""deploy/observability against the code: every metric a rule or a dashboard names is one
the processes export (read from their real registries), every dashboard query parses
as PromQL, every alert has a unit test that fires it and one that does not, and the
Kubernetes scrape configuration finds every component's pods."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from scripts.kubernetes_manifests import Manifest
from scripts.nats_process import NatsProcess
from services.runtime.ports import free_port
from tests.conftest import ROOT
from tests.deploy.manifest_checks import METRICS_PORT_NAME, workloads
from tests.deploy.promql_names import (
    DASHBOARDS,
    OBSERVABILITY,
    RULE_FILES,
    Expression,
    as_promql,
    dashboard_queries,
    metric_names,
    recorded_names,
    rule_expressions,
)
from tests.services.conftest import SERVICES, serve

pytestmark = pytest.mark.timeout(300)

PROMETHEUS_MADE = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
"""Series Prometheus writes itself, for every target or alert."""
_SUFFIXES = ("", "_total", "_created", "_bucket", "_count", "_sum", "_info")
"""The sample names a family's name stands for (prometheus-client gives a counter's
family name without `_total`, an info's without `_info`)."""


def _sample_names(families: Iterable[str]) -> set[str]:
    return {family + suffix for family in families for suffix in _SUFFIXES}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: scripts/test installs Debian's 'prometheus' package")
    return found


async def _bff_families(nats_url: str, data_dir: Path) -> set[str]:
    """The families the BFF process serves on BFF_METRICS_PORT, as `python -m bff` runs
    (how the BFF builds its registry is its own business; what it serves is ours)."""
    port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BFF_", "SUPERAPP_"))}
    env |= {
        "BFF_PORT": str(port),
        "BFF_METRICS_PORT": str(metrics_port),
        "BFF_DATA_DIR": str(data_dir),
        "BFF_NATS_URL": nats_url,
        "PYTHONPATH": str(ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bff",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            async with asyncio.timeout(120):
                while True:  # up once it answers /livez (its upstreams do not matter)
                    if process.returncode is not None:
                        pytest.fail(f"the BFF exited with code {process.returncode}")
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/livez")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)
            try:
                text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            except httpx.TransportError:
                return set()  # no metrics served: the comparison names what is missing
        return {family.name for family in text_string_to_metric_families(text)}
    finally:
        process.terminate()
        await process.wait()


def _registry_families(registry: CollectorRegistry) -> set[str]:
    return {metric.name for metric in registry.collect()}


@pytest.fixture(scope="module")
async def exported(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[set[str]]:
    """Every sample name the code exports: each service built in-process (its registry
    read once it is SERVING, so families made when its consumers and relay start are
    there) and the BFF's process (its /metrics)."""
    data_dir = tmp_path_factory.mktemp("observability")
    names: set[str] = set()
    with NatsProcess(data_dir / "nats") as nats:
        for kind in SERVICES:
            async with serve(kind, "", data_dir, TracerProvider(), nats.url) as running:
                names |= _registry_families(running.service.metrics.registry)
        names |= await _bff_families(nats.url, data_dir)
        yield _sample_names(names)


def _uses(expressions: Iterable[Expression]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for expression in expressions:
        for name in metric_names(expression.text):
            found.setdefault(name, []).append(expression.where)
    return found


def _unknown(uses: dict[str, list[str]], exported: set[str]) -> list[str]:
    known = exported | PROMETHEUS_MADE | recorded_names()
    return sorted(
        f"{name} (in {', '.join(sorted(set(where))[:2])})"
        for name, where in uses.items()
        if name not in known
    )


def test_the_lexer_finds_metric_names_and_nothing_else() -> None:
    expression = """
        sum by (job, le) (rate(grpc_server_handling_seconds_bucket{job=~"$job",le="0.25"}[5m]))
        / ignoring (stage) group_left
        on (job, instance) (time() - process_start_time_seconds < 600)
        or up offset 10m unless job:slo_latency_slow:ratio_rate5m > bool 1e3
    """
    assert metric_names(expression) == {
        "grpc_server_handling_seconds_bucket",
        "process_start_time_seconds",
        "up",
        "job:slo_latency_slow:ratio_rate5m",
    }


async def test_every_metric_a_rule_uses_is_exported_by_the_code(exported: set[str]) -> None:
    unknown = _unknown(_uses(rule_expressions()), exported)
    assert not unknown, "exported by no process:\n" + "\n".join(unknown)


async def test_every_metric_a_dashboard_queries_is_exported_by_the_code(
    exported: set[str],
) -> None:
    unknown = _unknown(_uses(dashboard_queries()), exported)
    assert not unknown, "exported by no process:\n" + "\n".join(unknown)


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (Grafana's variables replaced) as a recording rule."""
    queries = list(dashboard_queries())
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{index}:check", "expr": as_promql(query.text)}
                    for index, query in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboards_use_the_datasource_variable_in_every_panel() -> None:
    assert sorted(path.name for path in DASHBOARDS) == [
        "business.json",
        "event-bus.json",
        "red.json",
    ]
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["schemaVersion"] == 39, path.name
        [source] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
        assert (source["name"], source["query"]) == ("datasource", "prometheus"), path.name
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for panel in board["panels"]:
            where = f"{path.name}: {panel['title']}"
            position = panel["gridPos"]
            assert position["x"] + position["w"] <= 24, where
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "${datasource}", where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", where


def _alert_tests() -> dict[str, list[bool]]:
    """Per alert, whether each unit test case expects it firing."""
    cases: dict[str, list[bool]] = {}
    for path in sorted((OBSERVABILITY / "rules" / "tests").glob("*.yml")):
        suite = yaml.safe_load(path.read_text())
        assert sorted(suite["rule_files"]) == sorted(f"../{p.name}" for p in RULE_FILES), path
        for test in suite["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(bool(case.get("exp_alerts")))
    return cases


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    cases = _alert_tests()
    assert sorted(alerts) == sorted(cases)
    for alert in alerts:
        assert set(cases[alert]) == {True, False}, alert


def _relabel(config: dict[str, Any], target: str) -> dict[str, Any]:
    [job] = config["scrape_configs"]
    [rule] = [r for r in job["relabel_configs"] if r.get("target_label") == target]
    return dict(rule)


def _label_meta(label: str) -> str:
    """The pod label's meta label, as Prometheus's Kubernetes discovery names it."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


def test_the_kubernetes_scrape_config_finds_every_component_as_its_job(
    production: list[Manifest],
) -> None:
    """Prometheus (whose Debian build has no Kubernetes discovery for promtool to check)
    keeps exactly the ports named `metrics` of the pods in the production namespace, and
    names each pod's job after the component its rules and dashboards expect."""
    config = yaml.safe_load((OBSERVABILITY / "prometheus-kubernetes.yml").read_text())
    assert sorted(OBSERVABILITY / path for path in config["rule_files"]) == RULE_FILES
    [job] = config["scrape_configs"]
    [discovery] = job["kubernetes_sd_configs"]
    namespace = next(m["metadata"]["name"] for m in production if m["kind"] == "Namespace")
    assert discovery["role"] == "pod"
    assert discovery["namespaces"]["names"] == [namespace]
    [keep] = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_container_port_name"]
    name_label = _relabel(config, "job")
    [source] = name_label["source_labels"]
    for workload in workloads(production):
        kept = [
            port
            for port in workload.container["ports"]
            if re.fullmatch(keep["regex"], port.get("name", ""))
        ]
        assert [port["name"] for port in kept] == [METRICS_PORT_NAME], workload.component.name
        assert source == _label_meta("app.kubernetes.io/name")
        assert workload.labels["app.kubernetes.io/name"] == workload.component.name
