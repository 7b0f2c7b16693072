"""The local stack's metrics ports and, with --observability, the Prometheus
configuration it writes: every process named under its component's job, on the ports
it was given; promtool accepts the file. (tests/e2e/test_prometheus.py runs it.)"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.localstack import (
    COMPONENTS,
    PROMETHEUS_DEFAULT_PORT,
    ConfigurationError,
    StackConfig,
    StackError,
    argument_parser,
    check_ports,
)
from scripts.prometheus_process import RULE_FILES, ScrapeTarget, write_config

ON_POSTGRES = {
    f"{c.env_prefix}DATABASE_URL": f"postgresql+asyncpg://superapp@127.0.0.1/{c.name}"
    for c in COMPONENTS
}


def _elsewhere() -> dict[str, str]:
    """Every port free (0 picks one), so other stacks on this machine do not matter."""
    return {
        "SUPERAPP_NATS_PORT": "0",
        **{c.port_variable: "0" for c in COMPONENTS},
        **{c.metrics_port_variable: "0" for c in COMPONENTS},
    }


def _config(*flags: str, **environ: str) -> StackConfig:
    return StackConfig.resolve(argument_parser().parse_args(flags), environ)


def _targets(config: StackConfig) -> list[ScrapeTarget]:
    return [ScrapeTarget(e.component.name, e.name, e.metrics_address) for e in config.endpoints]


def test_every_process_gets_its_metrics_port_from_the_defaults_plus_ten_per_replica(
    tmp_path: Path,
) -> None:
    config = _config("--replicas", "2", "--data-dir", str(tmp_path), **ON_POSTGRES)

    ports = {e.name: e.metrics_port for e in config.endpoints}
    assert ports == {
        "identity-1": 7301,
        "identity-2": 7311,
        "wallet-1": 7302,
        "wallet-2": 7312,
        "catalogue-1": 7303,
        "catalogue-2": 7313,
        "orders-1": 7304,
        "orders-2": 7314,
        "miniapps-1": 7305,
        "miniapps-2": 7315,
        "bff-1": 7300,
        "bff-2": 7310,
    }
    assert config.prometheus_port is None  # without --observability


def test_metrics_ports_follow_the_environment_and_zero_picks_free_ones(tmp_path: Path) -> None:
    config = _config(
        "--observability",
        "--data-dir",
        str(tmp_path),
        WALLET_METRICS_PORT="9302",
        BFF_METRICS_PORT="0",
        SUPERAPP_PROMETHEUS_PORT="0",
    )
    ports = {e.name: e.metrics_port for e in config.endpoints}
    assert ports["wallet"] == 9302
    assert ports["bff"] not in {0, 7300}
    assert config.prometheus_port not in {None, 0, PROMETHEUS_DEFAULT_PORT}
    assert _config("--observability").prometheus_port == PROMETHEUS_DEFAULT_PORT


def test_a_metrics_port_in_use_or_given_twice_is_named_before_anything_starts(
    tmp_path: Path,
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = str(squatter.getsockname()[1])
        config = _config(**{**_elsewhere(), "CATALOGUE_METRICS_PORT": taken})
        with pytest.raises(StackError, match=f"port {taken} is already in use.*CATALOGUE_METRI"):
            check_ports(config)
        config = _config("--observability", **{**_elsewhere(), "SUPERAPP_PROMETHEUS_PORT": taken})
        with pytest.raises(StackError, match="SUPERAPP_PROMETHEUS_PORT"):
            check_ports(config)

    config = _config(**{**_elsewhere(), "WALLET_PORT": taken, "ORDERS_METRICS_PORT": taken})
    with pytest.raises(ConfigurationError, match=f"{taken} is set twice: WALLET_PORT and ORDERS"):
        check_ports(config)


def test_the_prometheus_config_names_every_process_under_its_component(tmp_path: Path) -> None:
    config = _config(
        "--observability", "--replicas", "2", "--data-dir", str(tmp_path), **ON_POSTGRES
    )
    path = write_config(tmp_path / "prometheus", _targets(config))

    written = yaml.safe_load(path.read_text())
    assert written["global"]["scrape_interval"] == "5s"
    assert written["rule_files"] == [str(rule) for rule in RULE_FILES]
    jobs = {
        job["job_name"]: {
            static["labels"]["process"]: static["targets"] for static in job["static_configs"]
        }
        for job in written["scrape_configs"]
    }
    assert jobs["wallet"] == {
        "wallet-1": ["127.0.0.1:7302"],
        "wallet-2": ["127.0.0.1:7312"],
    }
    assert sorted(jobs) == sorted(c.name for c in COMPONENTS)
    assert all(len(processes) == 2 for processes in jobs.values())

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: scripts/test installs Debian's 'prometheus' package")
    checked = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_process_listening_on_every_interface_is_scraped_on_loopback(tmp_path: Path) -> None:
    config = _config("--data-dir", str(tmp_path), IDENTITY_HOST="0.0.0.0")  # noqa: S104
    [identity] = [e for e in config.endpoints if e.component.name == "identity"]
    assert identity.metrics_address == "127.0.0.1:7301"
