"""The upstream channel policy: a deadline on every call, retries only for reads."""

from __future__ import annotations

import json
from typing import Any

from superapp.catalogue.v1 import catalogue_service_pb2
from superapp.identity.v1 import identity_service_pb2
from superapp.wallet.v1 import wallet_service_pb2

from bff.channels import HEALTH_SERVICE, service_config

SERVICES = [
    identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"],
    wallet_service_pb2.DESCRIPTOR.services_by_name["WalletService"],
    catalogue_service_pb2.DESCRIPTOR.services_by_name["CatalogueService"],
]


def _policy(service_name: str, method: str, configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The method config gRPC applies: an exact method match wins over the service's."""
    for wanted in ({"service": service_name, "method": method}, {"service": service_name}):
        for config in configs:
            if wanted in config["name"]:
                return config
    raise AssertionError(f"no method config for {service_name}/{method}")


def test_every_method_has_a_deadline_and_only_reads_are_retried() -> None:
    for service in SERVICES:
        configs = json.loads(service_config([service], 2.5))["methodConfig"]
        for method in service.methods:
            policy = _policy(service.full_name, method.name, configs)
            assert policy["timeout"] == "2.500000000s", method.full_name
            read = method.name.startswith(("Get", "List", "Search"))
            assert ("retryPolicy" in policy) is read, method.full_name
            if read:
                assert policy["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
        assert _policy(HEALTH_SERVICE, "Check", configs)["timeout"] == "2.500000000s"


def test_mutations_that_are_idempotent_by_request_id_are_still_not_retried() -> None:
    wallet = SERVICES[1]
    configs = json.loads(service_config([wallet], 5))["methodConfig"]
    for name in ("CreditWallet", "CreateTransfer", "CreateHold", "CaptureHold", "VoidHold"):
        assert "retryPolicy" not in _policy(wallet.full_name, name, configs), name
