"""`scripts/stack --only`: NATS and only the named components, each told where the
others it started listen; a name that is not a component is refused before anything
starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.localstack import (
    COMPONENTS,
    ConfigurationError,
    StackConfig,
    _child_environment,
    argument_parser,
)


def _config(tmp_path: Path, *flags: str) -> StackConfig:
    environ = {
        "SUPERAPP_NATS_PORT": "0",
        **{c.port_variable: "0" for c in COMPONENTS},
        **{c.metrics_port_variable: "0" for c in COMPONENTS},
    }
    args = argument_parser().parse_args(["--data-dir", str(tmp_path), *flags])
    return StackConfig.resolve(args, environ)


def test_only_the_named_components_get_endpoints_in_start_order(tmp_path: Path) -> None:
    config = _config(tmp_path, "--only", "wallet, identity")

    assert [e.name for e in config.endpoints] == ["identity", "wallet"]
    wallet = next(e for e in config.endpoints if e.name == "wallet")
    env = _child_environment({}, wallet, config)
    identity = next(e for e in config.endpoints if e.name == "identity")
    assert env["WALLET_IDENTITY_ADDR"] == identity.address
    # The components left out are not pointed anywhere: their own defaults apply.
    assert "WALLET_CATALOGUE_ADDR" not in env


def test_without_only_every_component_starts(tmp_path: Path) -> None:
    assert [e.name for e in _config(tmp_path).endpoints] == [c.name for c in COMPONENTS]


@pytest.mark.parametrize("names", ["wallet,ledger", "", ","])
def test_only_refuses_what_is_not_a_component(tmp_path: Path, names: str) -> None:
    with pytest.raises(ConfigurationError, match="--only takes components among"):
        _config(tmp_path, "--only", names)
