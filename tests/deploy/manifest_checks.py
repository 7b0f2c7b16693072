"""What the rendered Kubernetes manifests must agree on with the code.

The code is the one source of truth: the components and their modules
(`scripts.localstack.COMPONENTS`), the settings each reads (its pydantic-settings class),
its ports and probes (the settings' defaults, `services.runtime.health.LIVENESS`, the
BFF's routes), how long it takes to stop (the shutdown grace and release bounds). Each
check returns one line per disagreement, so a test can show it also fails on a
manifest someone broke on purpose.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import tomllib
from base64 import b64decode
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from unittest import mock

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from bff.routes import ROUTERS
from bff.server import BffServer
from scripts.kubernetes_manifests import Manifest
from scripts.localstack import COMPONENTS, Component, Readiness
from services.runtime.health import LIVENESS
from services.runtime.serving import HANDOVER_SECONDS, GrpcService
from services.runtime.settings import SHARED_VARIABLES, ConfigurationError, load_settings
from tests.conftest import ROOT

AWAITED: Mapping[str, str] = {}
"""Variables the manifests set ahead of the code that reads them. Each leaves this list
the moment a settings class reads it (a test says so)."""

_STANDARD_PREFIXES = ("OTEL_",)  # read by the OpenTelemetry SDK, not by our settings
METRICS_PORT_NAME = "metrics"
"""The container port Prometheus scrapes (deploy/observability/prometheus-kubernetes.yml
keeps the pods' ports of this name)."""
ADDRESS = re.compile(r"^dns:///(?P<service>[a-z0-9-]+):(?P<port>\d+)$")
NATS_URL = re.compile(r"^nats://(?P<service>[a-z0-9-]+):(?P<port>\d+)$")
_SUPERAPP_IMAGE = "superapp"


@dataclass(frozen=True)
class Workload:
    """A pod template of one of our components, as rendered."""

    component: Component
    pod: Mapping[str, Any]
    labels: Mapping[str, str]

    @property
    def container(self) -> Mapping[str, Any]:
        """The component's container (named after it)."""
        containers: list[Mapping[str, Any]] = self.pod["containers"]
        [container] = [c for c in containers if c["name"] == self.component.name]
        return container

    @property
    def literal_env(self) -> dict[str, str]:
        """The variables set to a literal value."""
        return {e["name"]: e["value"] for e in self.container.get("env", []) if "value" in e}

    @property
    def env_names(self) -> list[str]:
        """Every variable the container sets, in order (repeats included)."""
        return [e["name"] for e in self.container.get("env", [])]


def settings_class(component: Component) -> type[BaseSettings]:
    """The pydantic-settings class `python -m <component.module>` loads: the one in its
    `config` module whose prefix is the component's."""
    module = importlib.import_module(f"{component.module}.config")
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, BaseSettings)
        and value.model_config.get("env_prefix") == component.env_prefix
    ]
    if len(found) != 1:
        raise LookupError(f"{module.__name__}: expected one settings class, found {found}")
    return found[0]


def _settings_of(
    component: Component, overrides: Mapping[str, type[BaseSettings]] | None
) -> type[BaseSettings]:
    return (overrides or {}).get(component.name) or settings_class(component)


def variables_read(cls: type[BaseSettings]) -> set[str]:
    """The environment variables `cls` reads: prefix + field name (or the field's
    alias), and the shared variables their defaults fall back to."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = set(SHARED_VARIABLES.values())
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def workloads(manifests: Iterable[Manifest]) -> list[Workload]:
    """Every Deployment or StatefulSet that runs one of the components."""
    by_name = {component.name: component for component in COMPONENTS}
    found = []
    for manifest in manifests:
        if manifest["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        template = manifest["spec"]["template"]
        for container in template["spec"]["containers"]:
            if container["name"] in by_name:
                labels = template["metadata"].get("labels", {})
                found.append(Workload(by_name[container["name"]], template["spec"], labels))
    return found


def _effective(workload: Workload, settings: type[BaseSettings], field: str) -> Any:
    """A setting's value in the container: the literal set, else the class default."""
    variable = f"{workload.component.env_prefix}{field.upper()}"
    return workload.literal_env.get(variable, settings.model_fields[field].default)


def environment_problems(
    manifests: Iterable[Manifest],
    awaited: Mapping[str, str] = AWAITED,
    settings: Mapping[str, type[BaseSettings]] | None = None,
) -> list[str]:
    """Every variable a container sets is one its settings read (or awaited); each is
    set once; every required setting is set."""
    problems = []
    for workload in workloads(manifests):
        component = workload.component
        cls = _settings_of(component, settings)
        known = variables_read(cls)
        if workload.container.get("envFrom"):
            problems.append(f"{component.name}: envFrom hides which variables are set")
        names = workload.env_names
        for name in sorted(set(names)):
            if names.count(name) > 1:
                problems.append(f"{component.name}: {name} is set {names.count(name)} times")
            if name in known or name in awaited or name.startswith(_STANDARD_PREFIXES):
                continue
            problems.append(f"{component.name}: sets {name}, which {cls.__name__} does not read")
        prefix = component.env_prefix
        for field_name, field in cls.model_fields.items():
            variable = f"{prefix}{field_name}".upper()
            if field.is_required() and variable not in names:
                problems.append(f"{component.name}: {variable} is required and not set")
    return problems


def settings_load_problems(
    workload: Workload, secret_values: Mapping[str, str], cls: type[BaseSettings] | None = None
) -> list[str]:
    """Whether the component's settings load from exactly the container's environment
    (`secret_values` stand in for the variables taken from Secrets)."""
    cls = cls or settings_class(workload.component)
    environment = dict(workload.literal_env)
    for entry in workload.container.get("env", []):
        if "valueFrom" in entry:
            if entry["name"] not in secret_values:
                return [f"{workload.component.name}: no value to try for {entry['name']}"]
            environment[entry["name"]] = secret_values[entry["name"]]
    with mock.patch.dict(os.environ, environment, clear=True):
        try:
            load_settings(cls)
        except ConfigurationError as error:
            return [f"{workload.component.name}: {error}"]
    return []


def secret_values(manifests: Iterable[Manifest]) -> dict[str, str]:
    """The value each container variable takes from a Secret rendered with the manifests
    (dev's generated ones), by variable name."""
    manifests = list(manifests)
    secrets = {
        m["metadata"]["name"]: {k: b64decode(v).decode() for k, v in m.get("data", {}).items()}
        for m in manifests
        if m["kind"] == "Secret"
    }
    values = {}
    for workload in workloads(manifests):
        for entry in workload.container.get("env", []):
            reference = entry.get("valueFrom", {}).get("secretKeyRef")
            if reference and reference["name"] in secrets:
                values[entry["name"]] = secrets[reference["name"]][reference["key"]]
    return values


def _named_port(container: Mapping[str, Any], port: int | str) -> int | None:
    if isinstance(port, int):
        return port
    found = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    return found[0] if found else None


def _bff_get_routes() -> set[str]:
    return {
        route.path  # type: ignore[attr-defined]
        for router in ROUTERS
        for route in router.routes
        if "GET" in getattr(route, "methods", set())
    }


def port_and_probe_problems(
    manifests: Iterable[Manifest], settings: Mapping[str, type[BaseSettings]] | None = None
) -> list[str]:
    """The container listens where its settings say, on an address the kubelet reaches,
    serves its metrics on the port named `metrics`, and its probes ask the right port
    and question."""
    problems = []
    for workload in workloads(manifests):
        component, container = workload.component, workload.container
        cls = _settings_of(component, settings)
        name = component.name
        port = int(_effective(workload, cls, "port"))
        host = str(_effective(workload, cls, "host"))
        if host.startswith("127.") or host in {"localhost", "::1"}:
            problems.append(f"{name}: listens on {host}, which probes and peers cannot reach")
        ports = container.get("ports", [])
        declared = [p["containerPort"] for p in ports if p.get("name") != METRICS_PORT_NAME]
        if declared != [port]:
            problems.append(f"{name}: containerPort {declared}, but the settings say {port}")
        metrics = _effective(workload, cls, "metrics_port")
        named = [p["containerPort"] for p in ports if p.get("name") == METRICS_PORT_NAME]
        if metrics is None:
            variable = f"{component.env_prefix}METRICS_PORT"
            problems.append(f"{name}: {variable} is unset, so no metrics are served")
        elif named != [int(metrics)]:
            problems.append(
                f"{name}: port {METRICS_PORT_NAME!r} is {named}, but the settings say {metrics}"
            )
        probes = {kind: container.get(f"{kind}Probe") for kind in ("startup", "liveness")}
        probes["readiness"] = container.get("readinessProbe")
        for kind, probe in probes.items():
            if probe is None:
                problems.append(f"{name}: no {kind} probe")
                continue
            if component.readiness is Readiness.GRPC_HEALTH:
                grpc = probe.get("grpc")
                if grpc is None:
                    problems.append(f"{name}: {kind} probe is not a native gRPC probe")
                    continue
                if grpc["port"] != port:
                    problems.append(f"{name}: {kind} probe asks port {grpc['port']}, not {port}")
                # Readiness is the overall status (SERVING once events flow); liveness and
                # start-up only whether the process answers.
                wanted = "" if kind == "readiness" else LIVENESS
                if grpc.get("service", "") != wanted:
                    problems.append(
                        f"{name}: {kind} probe asks {grpc.get('service', '')!r}, not {wanted!r}"
                    )
            else:
                http = probe.get("httpGet")
                if http is None:
                    problems.append(f"{name}: {kind} probe is not an HTTP probe")
                    continue
                if _named_port(container, http["port"]) != port:
                    problems.append(f"{name}: {kind} probe asks port {http['port']}, not {port}")
                wanted = "/readyz" if kind == "readiness" else "/livez"
                if http["path"] != wanted or wanted not in _bff_get_routes():
                    problems.append(f"{name}: {kind} probe asks {http['path']}, not {wanted}")
        if component.readiness is Readiness.HTTP_READYZ and probes["readiness"]:
            # /readyz asks every upstream at once, each within readiness_timeout_seconds.
            budget = float(_effective(workload, cls, "readiness_timeout_seconds"))
            if probes["readiness"].get("timeoutSeconds", 1) <= budget:
                problems.append(f"{name}: readiness probe times out before /readyz can answer")
    return problems


def services_by_name(manifests: Iterable[Manifest]) -> dict[str, Manifest]:
    """The rendered Services, by name."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Service"}


def has_labels(required: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether `labels` include every one of `required` (a Service's selector)."""
    return all(labels.get(key) == value for key, value in required.items())


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions; empty selects all) on `labels`."""
    selector = selector or {}
    if not has_labels(selector.get("matchLabels", {}), labels):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if not {
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
        }[operator]:
            return False
    return True


def _listening_behind(service: Manifest, port: int, target: Workload) -> bool:
    """Whether `service`, on `port`, leads to the port `target`'s container listens on."""
    spec = service["spec"]
    if not has_labels(spec.get("selector", {}), target.labels):
        return False
    listening = target.container["ports"][0]["containerPort"]
    return any(
        entry["port"] == port
        and _named_port(target.container, entry.get("targetPort", port)) == listening
        for entry in spec["ports"]
    )


def address_problems(
    manifests: Iterable[Manifest], settings: Mapping[str, type[BaseSettings]] | None = None
) -> list[str]:
    """Every peer a component's settings name (`<peer>_addr`; their defaults are
    loopback, wrong in a pod) is set to `dns:///<service>:<port>` of a headless Service
    in front of that peer's pods on the port they listen on; every gRPC service sets
    its NATS URL to the NATS client Service."""
    manifests = list(manifests)
    services = services_by_name(manifests)
    by_component = {w.component.name: w for w in workloads(manifests)}
    problems = []
    for workload in by_component.values():
        component = workload.component
        cls = _settings_of(component, settings)
        env = workload.literal_env
        peers = [
            name.removesuffix("_addr")
            for name in cls.model_fields
            if name.endswith("_addr") and name != f"{component.name}_addr"
        ]
        for peer in peers:
            variable = f"{component.env_prefix}{peer.upper()}_ADDR"
            value = env.get(variable)
            match = ADDRESS.match(value or "")
            if match is None:
                problems.append(
                    f"{component.name}: {variable} is {value or 'unset'}, not "
                    "dns:///<service>:<port> (gRPC balances over every pod only so)"
                )
                continue
            service = services.get(match["service"])
            target = by_component.get(peer)
            if service is None or target is None:
                problems.append(f"{component.name}: {variable}={value} leads nowhere")
                continue
            if service["spec"].get("clusterIP") != "None":
                problems.append(f"Service {match['service']}: not headless (clusterIP: None)")
            if not _listening_behind(service, int(match["port"]), target):
                problems.append(f"{component.name}: {variable}={value} misses {peer}'s port")
        if component.readiness is Readiness.GRPC_HEALTH:
            variable = f"{component.env_prefix}NATS_URL"
            match = NATS_URL.match(env.get(variable, ""))
            service = services.get(match["service"]) if match else None
            ports = [entry["port"] for entry in service["spec"]["ports"]] if service else []
            if match is None or int(match["port"]) not in ports:
                problems.append(f"{component.name}: {variable}={env.get(variable)} leads nowhere")
    return list(dict.fromkeys(problems))  # a Service's fault once, however many call it


def module_problems(manifests: Iterable[Manifest]) -> list[str]:
    """Each container of our image runs its component's module, which exists and is
    packaged into the image (a top-level package of the wheel)."""
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    packaged = {path.split("/")[-1] for path in wheel["targets"]["wheel"]["packages"]}
    problems = []
    for workload in workloads(manifests):
        container, component = workload.container, workload.component
        image = str(container["image"]).rsplit("/", 1)[-1].split(":")[0]
        if image != _SUPERAPP_IMAGE:
            problems.append(f"{component.name}: runs image {container['image']}, not ours")
        if container.get("command"):
            problems.append(f"{component.name}: overrides the image's ENTRYPOINT (python -m)")
        args = list(container.get("args", []))
        if args != [component.module]:
            problems.append(f"{component.name}: args {args} are not [{component.module!r}]")
        for module in args[:1]:
            if importlib.util.find_spec(module) is None:
                problems.append(f"{component.name}: module {module} does not exist")
            if module.split(".")[0] not in packaged:
                problems.append(f"{component.name}: {module} is not in the image's wheel")
    return problems


def _release_seconds() -> tuple[float, float]:
    """The bound on each release step after the grace: a gRPC service's, the BFF's."""
    [grpc_bound] = [
        f.default for f in dataclasses.fields(GrpcService) if f.name == "release_seconds"
    ]
    bff_bound = inspect.signature(BffServer).parameters["release_seconds"].default
    assert isinstance(grpc_bound, float)
    assert isinstance(bff_bound, float)
    return grpc_bound, bff_bound


def shutdown_problems(manifests: Iterable[Manifest]) -> list[str]:
    """terminationGracePeriodSeconds covers the preStop pause, the shutdown grace and
    the release (else the kubelet kills a process still finishing calls)."""
    grpc_release, bff_release = _release_seconds()
    problems = []
    for workload in workloads(manifests):
        component = workload.component
        cls = settings_class(component)
        pause = (workload.container.get("lifecycle", {}).get("preStop", {}).get("sleep", {})).get(
            "seconds", 0
        )
        if pause == 0:
            problems.append(f"{component.name}: no preStop sleep before the drain")
        grace = float(_effective(workload, cls, "shutdown_grace_seconds"))
        # gRPC: the health drain, the server's stop and the releases are each bounded;
        # allow the two stop steps and one release in full. The BFF: one release.
        handover = 0.0
        if component.readiness is Readiness.GRPC_HEALTH:
            release = 3 * grpc_release
            handover = min(HANDOVER_SECONDS, grace / 2)  # NOT_SERVING, then the stop
        else:
            release = bff_release
            grace = max(1, round(grace))  # uvicorn's graceful timeout is whole seconds
        needed = pause + handover + grace + release
        allowed = workload.pod.get("terminationGracePeriodSeconds", 30)
        if allowed < needed:
            steps = f"preStop {pause} + " + (f"handover {handover:g} + " if handover else "")
            problems.append(
                f"{component.name}: terminationGracePeriodSeconds {allowed} < {needed:g} "
                f"({steps}grace {grace:g} + release {release:g})"
            )
    return problems


def pod_hardening_problems(manifests: Iterable[Manifest]) -> list[str]:
    """Every pod: no service links (Kubernetes would set <SERVICE>_PORT=tcp://…, and
    WALLET_PORT is a setting), no API token, and the restricted Pod Security Standard."""
    problems = []
    for manifest in manifests:
        if manifest["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        pod = manifest["spec"]["template"]["spec"]
        if pod.get("enableServiceLinks") is not False:
            problems.append(f"{name}: enableServiceLinks is not false")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token it does not use")
        security = pod.get("securityContext", {})
        if security.get("runAsNonRoot") is not True or not security.get("runAsUser"):
            problems.append(f"{name}: does not run as a non-root user")
        if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
        for container in pod["containers"]:
            context = container.get("securityContext", {})
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: {container['name']} may escalate privileges")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}: {container['name']} keeps capabilities")
    return problems


def dev_secret_problems(manifests: Iterable[Manifest]) -> list[str]:
    """In dev, identity knows the orders client secret's SHA-256, so orders can sign in."""
    values = secret_values(manifests)
    secret = values.get("ORDERS_CLIENT_SECRET", "")
    clients = json.loads(values.get("IDENTITY_SERVICE_CLIENTS", "{}"))
    if clients.get("orders") != hashlib.sha256(secret.encode()).hexdigest():
        return ["IDENTITY_SERVICE_CLIENTS does not hold the SHA-256 of ORDERS_CLIENT_SECRET"]
    return []
