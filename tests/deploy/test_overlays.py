"""What sets the overlays apart: dev runs one of everything with its own PostgreSQL;
production runs replicas that survive a node, a replicated NATS cluster, and lets in
from outside only what goes to the BFF."""

from __future__ import annotations

import re
from base64 import b64decode
from typing import Any

from scripts.kubernetes_manifests import Manifest
from tests.deploy.manifest_checks import dev_secret_problems, secret_values, workloads
from tests.deploy.network_policies import network_policy_problems


def objects(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def nats_conf(manifests: list[Manifest]) -> str:
    [config] = objects(manifests, "ConfigMap").values()
    text: str = config["data"]["nats.conf"]
    return text


def block(config: str, name: str) -> bool:
    """Whether nats.conf has a top-level `name { ... }` block."""
    return re.search(rf"^{name}\s*{{", config, re.MULTILINE) is not None


def stream_replicas(manifests: list[Manifest]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for workload in workloads(manifests):
        found[workload.component.name] = workload.literal_env.get("SUPERAPP_NATS_STREAM_REPLICAS")
    return found


def test_dev_runs_one_replica_of_everything_and_its_own_postgresql(
    dev: list[Manifest],
) -> None:
    counts = {
        m["metadata"]["name"]: m["spec"].get("replicas")
        for m in dev
        if m["kind"] in {"Deployment", "StatefulSet"}
    }
    assert counts == {
        "bff": 1,
        "catalogue": 1,
        "identity": 1,
        "miniapps": 1,
        "orders": 1,
        "wallet": 1,
        "nats": 1,
        "postgres": 1,
    }
    assert block(nats_conf(dev), "jetstream")
    assert not block(nats_conf(dev), "cluster")


def test_dev_database_urls_point_at_its_postgresql(dev: list[Manifest]) -> None:
    values = secret_values(dev)
    urls = {name: value for name, value in values.items() if name.endswith("_DATABASE_URL")}
    assert sorted(urls) == [
        "CATALOGUE_DATABASE_URL",
        "IDENTITY_DATABASE_URL",
        "MINIAPPS_DATABASE_URL",
        "ORDERS_DATABASE_URL",
        "WALLET_DATABASE_URL",
    ]
    password = values_of_secret(dev, "postgres-secrets")["password"]
    for name, url in urls.items():
        service = name.removesuffix("_DATABASE_URL").lower()
        assert url == f"postgresql+asyncpg://superapp:{password}@postgres:5432/{service}"


def values_of_secret(manifests: list[Manifest], prefix: str) -> dict[str, str]:
    [secret] = [
        m
        for m in manifests
        if m["kind"] == "Secret" and m["metadata"]["name"].startswith(f"{prefix}-")
    ]
    return {key: b64decode(value).decode() for key, value in secret["data"].items()}


def test_dev_identity_knows_the_orders_client_secret(dev: list[Manifest]) -> None:
    assert dev_secret_problems(dev) == []
    [secret] = [
        m
        for m in dev
        if m["kind"] == "Secret" and m["metadata"]["name"].startswith("orders-secrets-")
    ]
    secret["data"]["client-secret"] = "b3RoZXItc2VjcmV0LXZhbHVlLTEyMzQ1Ng=="
    assert dev_secret_problems(dev) == [
        "IDENTITY_SERVICE_CLIENTS does not hold the SHA-256 of ORDERS_CLIENT_SECRET"
    ]


def test_production_ships_no_secret_values(production: list[Manifest]) -> None:
    assert objects(production, "Secret") == {}


def test_production_autoscales_every_deployment_from_two_replicas(
    production: list[Manifest],
) -> None:
    deployments = objects(production, "Deployment")
    autoscalers = objects(production, "HorizontalPodAutoscaler")
    assert sorted(autoscalers) == sorted(deployments)
    for name, autoscaler in autoscalers.items():
        spec = autoscaler["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert spec["minReplicas"] >= 2
        [metric] = spec["metrics"]
        assert metric["resource"]["name"] == "cpu"
        # The autoscaler owns the count: a replicas field would reset it on every apply.
        assert "replicas" not in deployments[name]["spec"]


def test_production_keeps_one_replica_of_each_through_a_disruption(
    production: list[Manifest],
) -> None:
    budgets = objects(production, "PodDisruptionBudget")
    for name, deployment in objects(production, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [
            b
            for b in budgets.values()
            if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert [b["spec"].get("minAvailable") for b in matching] == [1], name


def test_production_requests_and_limits_resources_everywhere(production: list[Manifest]) -> None:
    for manifest in production:
        if manifest["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            resources: dict[str, Any] = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), container["name"]
            assert {"cpu", "memory"} <= resources["limits"].keys(), container["name"]


def test_production_nats_is_a_three_node_jetstream_cluster_with_replicated_streams(
    production: list[Manifest], dev: list[Manifest]
) -> None:
    nats = objects(production, "StatefulSet")["nats"]
    replicas = nats["spec"]["replicas"]
    assert replicas == 3
    headless = objects(production, "Service")[nats["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    config = nats_conf(production)
    routes = re.findall(r"nats://([a-z0-9.-]+):6222", config)
    assert routes == [f"nats-{i}.{headless['metadata']['name']}" for i in range(replicas)]
    assert block(config, "jetstream")
    assert block(config, "cluster")
    [storage] = nats["spec"]["volumeClaimTemplates"]
    assert storage["metadata"]["name"] == "data"
    # A majority stays up through voluntary disruptions.
    [budget] = [
        b
        for b in objects(production, "PodDisruptionBudget").values()
        if b["metadata"]["name"] == "nats"
    ]
    assert budget["spec"]["maxUnavailable"] == 1
    # Every publishing service keeps its stream on all three servers; dev's single
    # server takes the default (1).
    assert set(stream_replicas(production).values()) == {str(replicas), None}
    assert stream_replicas(production)["bff"] is None
    assert set(stream_replicas(dev).values()) == {None}


def test_production_network_policies_allow_exactly_the_wiring(production: list[Manifest]) -> None:
    assert network_policy_problems(production) == []


def test_a_network_policy_that_misses_or_widens_a_connection_is_caught(
    production: list[Manifest],
) -> None:
    policies = objects(production, "NetworkPolicy")
    wallet_from = policies["wallet"]["spec"]["ingress"][0]["from"]
    # orders may no longer call the wallet, and catalogue may although it never does.
    wallet_from[:] = [
        peer
        for peer in wallet_from
        if peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] != "orders"
    ] + [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "catalogue"}}}]
    # And the catalogue opens to the internet.
    policies["catalogue"]["spec"]["ingress"].append({"ports": [{"protocol": "TCP", "port": 7103}]})
    problems = network_policy_problems(production)
    assert "orders -> wallet:7102: ingress refused" in problems
    assert (
        "wallet:7102 is open to ['bff', 'catalogue'], its callers are ['bff', 'orders']" in problems
    )
    assert "catalogue:7103 is reachable from outside" in problems


def test_a_metrics_port_closed_to_prometheus_or_open_to_others_is_caught(
    production: list[Manifest],
) -> None:
    policies = objects(production, "NetworkPolicy")
    scrapes = policies["prometheus-scrapes"]["spec"]
    scrapes["podSelector"]["matchExpressions"][0]["values"].remove("wallet")
    # The BFF's metrics opened to the internet, and the catalogue's to the orders pods.
    policies["bff"]["spec"]["ingress"].append({"ports": [{"protocol": "TCP", "port": 9090}]})
    policies["catalogue"]["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 9090})
    problems = network_policy_problems(production)
    assert sorted(p for p in problems if ":9090" in p) == [
        "bff:9090 is open to ['bff', 'catalogue', 'identity', 'miniapps', 'nats', 'orders', "
        "'wallet'], its callers are []",
        "bff:9090 is reachable from outside",
        "catalogue:9090 is open to ['bff', 'orders'], its callers are []",
        "wallet:9090 (metrics) is closed to Prometheus",
    ]


def test_production_exposes_the_bff_through_a_load_balancer_that_keeps_client_addresses(
    production: list[Manifest],
) -> None:
    services = objects(production, "Service")
    assert services["bff"]["spec"]["type"] == "LoadBalancer"
    assert services["bff"]["spec"]["externalTrafficPolicy"] == "Local"
    others = {
        name: s["spec"].get("type", "ClusterIP") for name, s in services.items() if name != "bff"
    }
    assert set(others.values()) == {"ClusterIP"}


def test_nats_stops_in_lame_duck_mode_within_its_grace_period(manifests: list[Manifest]) -> None:
    """preStop asks the server for lame duck mode (clients move to other servers) through
    the pid file nats.conf names, on a writable volume; the pod's grace outlasts it."""
    config = nats_conf(manifests)

    def setting(name: str) -> str:
        found = re.search(rf"^{name}:\s*(\S+)$", config, re.MULTILINE)
        assert found is not None, name
        return found[1]

    nats = objects(manifests, "StatefulSet")["nats"]["spec"]["template"]["spec"]
    [container] = nats["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["nats-server", "--signal", f"ldm={setting('pid_file')}"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert setting("pid_file").rsplit("/", 1)[0] in mounts
    lame_duck = sum(
        int(setting(name).removesuffix("s"))
        for name in ("lame_duck_grace_period", "lame_duck_duration")
    )
    assert nats["terminationGracePeriodSeconds"] > lame_duck
