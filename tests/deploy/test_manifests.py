"""Every overlay renders, passes the Kubernetes schemas, and says exactly what the code
reads: the settings each container sets, the ports it listens on and is probed on, the
peers it calls, the module it runs and the time it gets to stop."""

from __future__ import annotations

from typing import Any

from pydantic import create_model
from pydantic_settings import BaseSettings

from scripts.kubernetes_manifests import Manifest, nats_config_problems, schema_problems
from services.wallet.config import WalletSettings
from tests.deploy.conftest import OVERLAYS
from tests.deploy.manifest_checks import (
    AWAITED,
    address_problems,
    environment_problems,
    module_problems,
    pod_hardening_problems,
    port_and_probe_problems,
    secret_values,
    settings_class,
    settings_load_problems,
    shutdown_problems,
    variables_read,
    workloads,
)


def container(manifests: list[Manifest], name: str) -> dict[str, Any]:
    """The container named `name` (its component), to change in a test."""
    found: dict[str, Any]
    [found] = [
        c
        for m in manifests
        if m["kind"] in {"Deployment", "StatefulSet"}
        for c in m["spec"]["template"]["spec"]["containers"]
        if c["name"] == name
    ]
    return found


def env_entry(manifests: list[Manifest], component: str, variable: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = container(manifests, component)["env"]
    [entry] = [e for e in entries if e["name"] == variable]
    return entry


def test_there_is_a_dev_and_a_production_overlay() -> None:
    assert OVERLAYS == ["dev", "production"]


def test_every_object_passes_the_kubernetes_schema(manifests: list[Manifest]) -> None:
    assert schema_problems(manifests) == []


def test_the_schema_check_refuses_an_unknown_field_and_an_unknown_kind(
    manifests: list[Manifest],
) -> None:
    container(manifests, "wallet")["readinessProbe"]["grpc"]["servce"] = ""
    manifests.append({"apiVersion": "v1", "kind": "Servise", "metadata": {"name": "typo"}})
    problems = schema_problems(manifests)
    assert len(problems) == 2
    assert "'servce' was unexpected" in problems[0]
    assert problems[1].startswith("Servise/typo: ")


def test_the_nats_configuration_parses(manifests: list[Manifest]) -> None:
    assert nats_config_problems(manifests) == []
    [config] = [m for m in manifests if m["kind"] == "ConfigMap"]
    config["data"]["nats.conf"] += "\njetstream_store_dir: /data\n"
    [problem] = nats_config_problems(manifests)
    assert 'unknown field "jetstream_store_dir"' in problem


def test_every_component_runs_once_in_each_overlay(manifests: list[Manifest]) -> None:
    names = sorted(workload.component.name for workload in workloads(manifests))
    assert names == ["bff", "catalogue", "identity", "miniapps", "orders", "wallet"]


def test_containers_set_only_settings_their_service_reads(manifests: list[Manifest]) -> None:
    assert environment_problems(manifests) == []


def test_a_misspelt_or_renamed_variable_is_caught(manifests: list[Manifest]) -> None:
    env_entry(manifests, "wallet", "WALLET_NATS_URL")["name"] = "WALLET_NATS_ADDR"
    env_entry(manifests, "orders", "ORDERS_CLIENT_SECRET")["name"] = "ORDERS_SECRET"
    assert sorted(environment_problems(manifests)) == [
        "orders: ORDERS_CLIENT_SECRET is required and not set",
        "orders: sets ORDERS_SECRET, which OrdersSettings does not read",
        "wallet: sets WALLET_NATS_ADDR, which WalletSettings does not read",
    ]


def test_a_setting_renamed_in_the_code_is_caught(manifests: list[Manifest]) -> None:
    fields: dict[str, Any] = {
        name: (field.annotation, field) for name, field in WalletSettings.model_fields.items()
    }
    fields["bus_url"] = fields.pop("nats_url")  # as if `nats_url` had become `bus_url`
    renamed = create_model("RenamedWallet", __base__=BaseSettings, **fields)
    renamed.model_config["env_prefix"] = "WALLET_"

    problems = environment_problems(manifests, settings={"wallet": renamed})
    assert problems == ["wallet: sets WALLET_NATS_URL, which RenamedWallet does not read"]


def test_awaited_variables_are_not_read_by_any_settings_class_yet(
    rendered: dict[str, list[Manifest]],
) -> None:
    """Once the code reads one, it is checked like every other: drop it from AWAITED."""
    classes = {settings_class(w.component) for w in workloads(rendered["dev"])}
    read = set().union(*(variables_read(cls) for cls in classes))
    assert sorted(read & set(AWAITED)) == []


def test_each_components_settings_load_from_its_container_environment(
    rendered: dict[str, list[Manifest]], manifests: list[Manifest]
) -> None:
    # Production takes its secrets from Secrets made by hand; dev's values stand in.
    stand_ins = secret_values(rendered["dev"])
    for workload in workloads(manifests):
        assert settings_load_problems(workload, stand_ins) == []


def test_a_value_the_settings_refuse_is_caught(manifests: list[Manifest]) -> None:
    env_entry(manifests, "catalogue", "CATALOGUE_NATS_URL")["value"] = "nats:4222"
    [catalogue] = [w for w in workloads(manifests) if w.component.name == "catalogue"]
    [problem] = settings_load_problems(catalogue, {"CATALOGUE_DATABASE_URL": ""})
    assert problem.startswith("catalogue: CATALOGUE_NATS_URL: ")


def test_ports_and_probes_are_the_ones_the_services_listen_on(manifests: list[Manifest]) -> None:
    assert port_and_probe_problems(manifests) == []


def test_a_moved_port_or_probe_is_caught(manifests: list[Manifest]) -> None:
    container(manifests, "wallet")["ports"][0]["containerPort"] = 7112
    container(manifests, "catalogue")["livenessProbe"]["grpc"]["port"] = 7102
    container(manifests, "orders")["readinessProbe"]["grpc"]["service"] = "liveness"
    container(manifests, "bff")["readinessProbe"]["httpGet"]["path"] = "/ready"
    assert sorted(port_and_probe_problems(manifests)) == [
        "bff: readiness probe asks /ready, not /readyz",
        "catalogue: liveness probe asks port 7102, not 7103",
        "orders: readiness probe asks 'liveness', not ''",
        "wallet: containerPort [7112], but the settings say 7102",
    ]


def test_a_port_changed_in_the_code_is_caught(manifests: list[Manifest]) -> None:
    class MovedWallet(WalletSettings):
        port: int = 7202

    problems = port_and_probe_problems(manifests, settings={"wallet": MovedWallet})
    assert problems[0] == "wallet: containerPort [7102], but the settings say 7202"
    assert len(problems) == 4  # and its three probes


def test_a_metrics_port_unset_or_moved_is_caught(manifests: list[Manifest]) -> None:
    wallet = container(manifests, "wallet")
    wallet["env"] = [e for e in wallet["env"] if e["name"] != "WALLET_METRICS_PORT"]
    env_entry(manifests, "bff", "BFF_METRICS_PORT")["value"] = "9091"
    orders = container(manifests, "orders")
    orders["ports"] = [p for p in orders["ports"] if p["name"] != "metrics"]
    assert sorted(port_and_probe_problems(manifests)) == [
        "bff: port 'metrics' is [9090], but the settings say 9091",
        "orders: port 'metrics' is [], but the settings say 9090",
        "wallet: WALLET_METRICS_PORT is unset, so no metrics are served",
    ]


def test_a_service_left_on_loopback_is_caught(manifests: list[Manifest]) -> None:
    wallet = container(manifests, "wallet")
    wallet["env"] = [e for e in wallet["env"] if e["name"] != "WALLET_HOST"]
    assert port_and_probe_problems(manifests) == [
        "wallet: listens on 127.0.0.1, which probes and peers cannot reach"
    ]


def test_peer_addresses_reach_each_peer_through_a_headless_service(
    manifests: list[Manifest],
) -> None:
    assert address_problems(manifests) == []


def test_a_wrong_or_missing_peer_address_is_caught(manifests: list[Manifest]) -> None:
    env_entry(manifests, "orders", "ORDERS_WALLET_ADDR")["value"] = "dns:///wallet:7103"
    env_entry(manifests, "bff", "BFF_CATALOGUE_ADDR")["value"] = "catalogue:7103"
    wallet = container(manifests, "wallet")
    wallet["env"] = [e for e in wallet["env"] if e["name"] != "WALLET_IDENTITY_ADDR"]
    [identity] = [
        m for m in manifests if m["kind"] == "Service" and m["metadata"]["name"] == "identity"
    ]
    del identity["spec"]["clusterIP"]
    assert sorted(address_problems(manifests)) == [
        "Service identity: not headless (clusterIP: None)",
        "bff: BFF_CATALOGUE_ADDR is catalogue:7103, not dns:///<service>:<port> "
        "(gRPC balances over every pod only so)",
        "orders: ORDERS_WALLET_ADDR=dns:///wallet:7103 misses wallet's port",
        "wallet: WALLET_IDENTITY_ADDR is unset, not dns:///<service>:<port> "
        "(gRPC balances over every pod only so)",
    ]


def test_a_peer_added_in_the_code_must_be_set(manifests: list[Manifest]) -> None:
    class WalletWithAPeer(WalletSettings):
        """As if the wallet started calling the catalogue."""

        catalogue_addr: str = "127.0.0.1:7103"

    assert address_problems(manifests, settings={"wallet": WalletWithAPeer}) == [
        "wallet: WALLET_CATALOGUE_ADDR is unset, not dns:///<service>:<port> "
        "(gRPC balances over every pod only so)"
    ]


def test_each_container_runs_its_components_module_from_the_image(
    manifests: list[Manifest],
) -> None:
    assert module_problems(manifests) == []
    container(manifests, "catalogue")["args"] = ["services.catalog"]
    assert module_problems(manifests) == [
        "catalogue: args ['services.catalog'] are not ['services.catalogue']",
        "catalogue: module services.catalog does not exist",
    ]


def test_the_grace_period_covers_the_pause_the_drain_and_the_release(
    manifests: list[Manifest],
) -> None:
    assert shutdown_problems(manifests) == []
    container(manifests, "wallet")["env"].append(
        {"name": "WALLET_SHUTDOWN_GRACE_SECONDS", "value": "30"}
    )
    assert shutdown_problems(manifests) == [
        "wallet: terminationGracePeriodSeconds 40 < 51 "
        "(preStop 5 + handover 1 + grace 30 + release 15)"
    ]


def test_every_pod_is_hardened_and_gets_no_service_links(manifests: list[Manifest]) -> None:
    assert pod_hardening_problems(manifests) == []
