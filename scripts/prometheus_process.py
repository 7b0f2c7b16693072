"""Prometheus for the local stack: its scrape configuration and its command line.

`scripts/stack --observability` writes `<data dir>/prometheus/prometheus.yml` naming every
process it starts (the ports are only known then: they move with the environment and
`--replicas`), with the rule files under deploy/observability/rules, and runs Debian's
`prometheus` binary on it (scripts/_bootstrap.sh installs it). The Kubernetes
configuration is static text: deploy/observability/prometheus-kubernetes.yml.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = [
    "RULE_FILES",
    "SCRAPE_INTERVAL",
    "PrometheusStartError",
    "ScrapeTarget",
    "prometheus_command",
    "scrape_config",
    "write_config",
]

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = (
    ROOT / "deploy" / "observability" / "rules" / "recording.yml",
    ROOT / "deploy" / "observability" / "rules" / "alerts.yml",
)
SCRAPE_INTERVAL = "5s"
"""Short, so a dashboard or a test sees a change within seconds; the machine is local."""


class PrometheusStartError(Exception):
    """Prometheus cannot be started; the message says what to install or fix."""


@dataclass(frozen=True)
class ScrapeTarget:
    """One process to scrape: its component (the job), its name in the stack, where."""

    job: str
    process: str
    address: str
    """host:port of its `/metrics`."""


def scrape_config(targets: Sequence[ScrapeTarget], rule_files: Sequence[Path] = RULE_FILES) -> str:
    """prometheus.yml: one job per component, one static target per process (labelled
    with the process's name in the stack, e.g. `wallet-2`), and the rule files."""
    jobs: dict[str, list[ScrapeTarget]] = {}
    for target in targets:
        jobs.setdefault(target.job, []).append(target)
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [
                    {"targets": [target.address], "labels": {"process": target.process}}
                    for target in members
                ],
            }
            for job, members in jobs.items()
        ],
    }
    header = (
        "# Written by scripts/stack --observability at each start, with the ports of this\n"
        "# run: edits are lost. The rules: deploy/observability/rules.\n"
    )
    body: str = yaml.safe_dump(config, sort_keys=False)
    return header + body


def write_config(directory: Path, targets: Sequence[ScrapeTarget]) -> Path:
    """Write `directory/prometheus.yml`; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(scrape_config(targets))
    return path


def prometheus_command(config: Path, storage: Path, port: int) -> list[str]:
    """The argv of a Prometheus on 127.0.0.1:`port` keeping its data in `storage`."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise PrometheusStartError(
            "prometheus is not installed: scripts/stack --observability installs Debian's "
            "'prometheus' package when it may (root or sudo); else install it by hand"
        )
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Its start-up chatter would drown the services' lines; warnings and errors stay.
        "--log.level=warn",
    ]
