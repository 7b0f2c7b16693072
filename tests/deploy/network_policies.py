"""NetworkPolicies, evaluated: which connections between the rendered pods (and from or
to outside the cluster) they let through, against the connections the settings make."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from scripts.kubernetes_manifests import Manifest
from tests.deploy.manifest_checks import (
    ADDRESS,
    METRICS_PORT_NAME,
    NATS_URL,
    has_labels,
    selects,
    services_by_name,
    workloads,
)


@dataclass(frozen=True)
class Peer:
    """A party to a connection: a pod (its namespace's and its own labels) or, with no
    labels at all, an address outside the cluster."""

    pod_labels: Mapping[str, str] | None
    namespace_labels: Mapping[str, str] | None = None


OUTSIDE = Peer(None)


def _peer_matches(rule_peer: Mapping[str, Any], peer: Peer, own_namespace: str) -> bool:
    if "ipBlock" in rule_peer:
        return peer.pod_labels is None  # we only ever give ipBlocks to outside addresses
    if peer.pod_labels is None:
        return False
    namespace = peer.namespace_labels or {"kubernetes.io/metadata.name": own_namespace}
    if "namespaceSelector" in rule_peer:
        if not selects(rule_peer["namespaceSelector"], namespace):
            return False
    elif namespace.get("kubernetes.io/metadata.name") != own_namespace:
        return False
    return "podSelector" not in rule_peer or selects(rule_peer["podSelector"], peer.pod_labels)


def allowed(
    policies: Iterable[Manifest],
    direction: str,
    pod_labels: Mapping[str, str],
    other: Peer,
    port: int,
    namespace: str,
) -> bool:
    """Whether NetworkPolicies let traffic `direction` ("Ingress" or "Egress") of the pod
    with `pod_labels` from or to `other` on TCP `port`."""
    field, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if direction in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], pod_labels)
    ]
    if not selecting:
        return True  # a pod no policy selects is not isolated
    for policy in selecting:
        for rule in policy["spec"].get(field, []):
            peers = rule.get(peers_key)
            ports = rule.get("ports")
            peer_ok = not peers or any(_peer_matches(p, other, namespace) for p in peers)
            port_ok = not ports or any(
                p.get("port") in (None, port) and p.get("protocol", "TCP") == "TCP" for p in ports
            )
            if peer_ok and port_ok:
                return True
    return False


KUBE_DNS = Peer({"k8s-app": "kube-dns"}, {"kubernetes.io/metadata.name": "kube-system"})
PROMETHEUS = Peer(
    {"app.kubernetes.io/name": "prometheus"}, {"kubernetes.io/metadata.name": "monitoring"}
)
"""A Prometheus pod as installed in namespace `monitoring` (labels vary: the policy may
not depend on them)."""
POSTGRES_PORT = 5432


@dataclass(frozen=True)
class PodGroup:
    """The pods of one Deployment or StatefulSet: their labels and listening ports."""

    name: str
    labels: Mapping[str, str]
    ports: Mapping[str, int]
    """containerPort by port name."""


def _pod_groups(manifests: Iterable[Manifest]) -> dict[str, PodGroup]:
    groups = {}
    for manifest in manifests:
        if manifest["kind"] in {"Deployment", "StatefulSet"}:
            template = manifest["spec"]["template"]
            ports = {
                port.get("name", str(port["containerPort"])): port["containerPort"]
                for container in template["spec"]["containers"]
                for port in container.get("ports", [])
            }
            name = manifest["metadata"]["name"]
            groups[name] = PodGroup(name, template["metadata"]["labels"], ports)
    return groups


def _connections(manifests: list[Manifest]) -> Iterator[tuple[PodGroup, PodGroup, int]]:
    """Every connection the components' settings make, as (caller, callee, the port the
    callee's pods listen on), through the Service each address names."""
    groups = _pod_groups(manifests)
    services = services_by_name(manifests)
    for workload in workloads(manifests):
        for value in workload.literal_env.values():
            match = ADDRESS.match(value) or NATS_URL.match(value)
            service = services.get(match["service"]) if match else None
            if match is None or service is None:
                continue
            [entry] = [e for e in service["spec"]["ports"] if e["port"] == int(match["port"])]
            selector = service["spec"].get("selector", {})
            for callee in groups.values():
                if has_labels(selector, callee.labels):
                    target = entry.get("targetPort", entry["port"])
                    port = callee.ports.get(target) if isinstance(target, str) else target
                    if port is not None:
                        yield groups[workload.component.name], callee, port


def network_policy_problems(manifests: Iterable[Manifest]) -> list[str]:
    """NetworkPolicies allow exactly what the wiring needs: every connection the
    settings make (peers, NATS), PostgreSQL and DNS; into each pod only from the pods
    that call it and, for the BFF alone, from anywhere; into each metrics port only
    from Prometheus in namespace `monitoring`."""
    manifests = list(manifests)
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    namespace = next(m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace")
    groups = _pod_groups(manifests)
    problems = []
    if not any(
        not p["spec"]["podSelector"]
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        problems.append("no default-deny NetworkPolicy for every pod")

    def lets(direction: str, labels: Mapping[str, str], other: Peer, port: int) -> bool:
        return allowed(policies, direction, labels, other, port, namespace)

    callers: dict[tuple[str, int], set[str]] = {}
    for caller, callee, port in _connections(manifests):
        callers.setdefault((callee.name, port), set()).add(caller.name)
        text = f"{caller.name} -> {callee.name}:{port}"
        if not lets("Egress", caller.labels, Peer(callee.labels), port):
            problems.append(f"{text}: egress refused")
        if not lets("Ingress", callee.labels, Peer(caller.labels), port):
            problems.append(f"{text}: ingress refused")
    for workload in workloads(manifests):
        labels = groups[workload.component.name].labels
        if not lets("Egress", labels, KUBE_DNS, 53):
            problems.append(f"{workload.component.name}: cannot reach the cluster DNS")
        uses_database = f"{workload.component.env_prefix}DATABASE_URL" in workload.env_names
        if uses_database and not lets("Egress", labels, OUTSIDE, POSTGRES_PORT):
            problems.append(f"{workload.component.name}: cannot reach PostgreSQL")
    if "nats" in groups:  # the cluster's routes between its own servers
        callers[("nats", groups["nats"].ports["cluster"])] = {"nats"}
    # Nothing more: every port of every pod is open to exactly its callers.
    for group in groups.values():
        for port_name, port in group.ports.items():
            scraped = port_name == METRICS_PORT_NAME
            public = group.name == "bff" and not scraped
            if scraped and not lets("Ingress", group.labels, PROMETHEUS, port):
                problems.append(f"{group.name}:{port} (metrics) is closed to Prometheus")
            expected = set(groups) if public else callers.get((group.name, port), set())
            opened = {
                o.name
                for o in groups.values()
                if lets("Ingress", group.labels, Peer(o.labels), port)
            }
            if opened != expected:
                problems.append(
                    f"{group.name}:{port} is open to {sorted(opened)}, "
                    f"its callers are {sorted(expected)}"
                )
            if lets("Ingress", group.labels, OUTSIDE, port) != public:
                reachable = "reachable" if not public else "not reachable"
                problems.append(f"{group.name}:{port} is {reachable} from outside")
    return problems
