"""The live stack that generated clients in other languages drive, and the journey
every one of them must report.

Each language's client (under `clients/<language>/`) is generated from `protos/` at
test time, started with the addresses below in its environment, and prints one JSON
report on its last line of stdout. `check_journey` holds every language to the same
journey and compares what the client saw with what the stack knows.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from superapp.identity.v1 import identity_service_pb2 as identity_pb
from superapp.identity.v1 import identity_service_pb2_grpc
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from tests.e2e.conftest import (  # noqa: F401 - shared_stack: a fixture
    SharedStack,
    SharedStackFactory,
    Stack,
    shared_stack,
)

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "polyglot-admin@example.com"
ADMIN_PASSWORD = "polyglot admin password"
TOP_UP_MINOR = 10_000
TRANSFER_MINOR = 2_500
JOURNEY_TIMEOUT_SECONDS = 120.0


# What the journey calls: identity, wallet and catalogue, and identity's events on NATS.
# The stack starts only those (`scripts/stack --only`, as the README has it): orders,
# miniapps and the BFF, which the journey never reaches, cost about half of a whole
# stack's ~45 CPU-seconds of start-up (their imports and outbox relays).
JOURNEY_COMPONENTS = ("--only", "identity,wallet,catalogue")


@dataclass(frozen=True)
class LiveStack:
    """The stack as a client in another language is given it: environment variables."""

    stack: Stack

    @property
    def client_environment(self) -> dict[str, str]:
        """What every journey client reads (and nothing else of ours)."""
        return {
            "SUPERAPP_IDENTITY_ADDR": self.stack.address("IDENTITY_PORT"),
            "SUPERAPP_WALLET_ADDR": self.stack.address("WALLET_PORT"),
            "SUPERAPP_CATALOGUE_ADDR": self.stack.address("CATALOGUE_PORT"),
            "SUPERAPP_NATS_URL": self.stack.nats_url,
            "SUPERAPP_ADMIN_EMAIL": ADMIN_EMAIL,
            "SUPERAPP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SUPERAPP_TOP_UP_MINOR": str(TOP_UP_MINOR),
            "SUPERAPP_TRANSFER_MINOR": str(TRANSFER_MINOR),
        }


@dataclass(frozen=True)
class StartingStack:
    """The module's stack, started and not yet waited for."""

    shared: SharedStack

    async def ready(self) -> LiveStack:
        """The stack, once it has printed that it is ready (a test fails if it never is)."""
        return LiveStack(await self.shared.running())


@pytest.fixture(scope="module")
def journey_stack(shared_stack: SharedStackFactory) -> SharedStack:  # noqa: F811
    """One stack for every language's journey, started the README's way with an admin to
    bootstrap. The journeys share it as any clients would: each signs up users of its
    own, finds the admin signed up already and reads its own user's event."""
    return shared_stack(JOURNEY_COMPONENTS, IDENTITY_BOOTSTRAP_ADMIN_EMAIL=ADMIN_EMAIL)


@pytest.fixture
def starting_stack(journey_stack: SharedStack) -> StartingStack:
    """The journey's stack, starting: its processes start while the test builds its
    client (both take tens of seconds of wall time), and the test awaits `ready()`
    before the journey."""
    journey_stack.start()
    return StartingStack(journey_stack)


async def build_step(command: Sequence[str], *, timeout_seconds: float) -> None:
    """Run one step of building a client in the repository root. A failing step fails the
    test with its own output (naming what is missing), never a skip."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=timeout_seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{' '.join(command)} did not finish in {timeout_seconds:.0f} s")
    if process.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{out.decode()}")


async def built_client(language: str, *, timeout_seconds: float) -> Path:
    """`clients/<language>/install` then `clients/<language>/build`; the journey binary they
    leave in the cache."""
    for step in ("install", "build"):
        script = Path("clients") / language / step
        await build_step(["bash", str(script)], timeout_seconds=timeout_seconds)
    return ROOT / ".cache" / "clients" / language / "bin" / "journey"


async def run_journey(command: Sequence[str], live: LiveStack, *, cwd: Path) -> dict[str, Any]:
    """Run a journey client; its JSON report (the last line it printed)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env={**os.environ, **live.client_environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=JOURNEY_TIMEOUT_SECONDS)
    assert process.returncode == 0, f"{command[0]} failed:\n{out.decode()}\n{err.decode()}"
    lines = out.decode().strip().splitlines()
    assert lines, f"{command[0]} printed no report:\n{err.decode()}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def check_local_validation(report: dict[str, Any]) -> None:
    """What a client that checks requests against the contract's rules (protovalidate
    over the `buf.validate` options of protos/) before sending them must report beside
    its journey. The Go and C++ clients are built from Debian's packages, which hold no
    protovalidate, and send every request as it is.

    The client validates every request it sends; during the journey, after the
    transfer, it tries a transfer of 0 EUR, which breaks the contract's rule on
    `amount` and must be refused before it is sent. Its report's keys:
    - `validated_requests`: how many requests passed their rules and were sent;
    - `refused_requests`: how many broke a rule and were not sent (that one);
    - `refused_locally`: the refusal as the validator gave it: `method`, `field` (the
      first violation's path), `rule_id`, `violations` (how many).
    That it was not sent is also what check_journey sees: the payer's balance is the one
    the real transfer left.
    """
    assert report["validated_requests"] > 0
    assert report["refused_requests"] == 1
    assert report["refused_locally"] == {
        "method": "CreateTransfer",
        "field": "amount",
        "rule_id": "amount_minor.positive",
        "violations": 1,
    }


async def check_journey(report: dict[str, Any], live: LiveStack) -> None:
    """The journey every language must have done, against what the stack knows.

    The client signs up the admin (`SUPERAPP_ADMIN_EMAIL`, `SUPERAPP_ADMIN_PASSWORD`:
    the stack's bootstrap admin), a payer and a payee, logs the payer in, reads the
    payer with its token, tops the payer up by `SUPERAPP_TOP_UP_MINOR` EUR as the admin
    (retrying NOT_FOUND until the wallet has opened from identity's event), transfers
    `SUPERAPP_TRANSFER_MINOR` EUR to the payee as the payer, searches products, sends a
    malformed RegisterUser and consumes the payer's `UserRegistered` from the stream
    `SUPERAPP_IDENTITY`. The report's keys:
    - `user_id`, `email`: the user the client registered; `login_user_id` the id its
      login returned; `read_email` what an authenticated GetUser answered;
    - `payee_id`: a second user it registered and paid;
    - `balance_after_top_up_minor`, `balance_after_transfer_minor`: the payer's EUR
      balance after the admin's top-up and after the transfer (GetWallet);
    - `search_results`: how many products SearchProducts answered (a number);
    - `error`: a RegisterUser with a malformed email, decoded from
      `grpc-status-details-bin`: `code` (the name), `reason` (ErrorInfo),
      `domain` (ErrorInfo), `fields` (the BadRequest field violations' fields);
    - `event`: the `UserRegistered` of `user_id`, read from JetStream and decoded:
      `subject` (as taken from the `superapp.events.v1.subject` option), `user_id`,
      `email`.
    """
    assert report["login_user_id"] == report["user_id"]
    assert report["read_email"] == report["email"]
    assert report["balance_after_top_up_minor"] == TOP_UP_MINOR
    assert report["balance_after_transfer_minor"] == TOP_UP_MINOR - TRANSFER_MINOR
    assert isinstance(report["search_results"], int)
    error = report["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["reason"] == "INVALID_ARGUMENT"
    assert error["domain"] == "identity.superapp"
    assert "email" in error["fields"]
    event = report["event"]
    assert event["subject"] == "superapp.identity.user.registered"
    assert event["user_id"] == report["user_id"]
    assert event["email"] == report["email"]

    # What the stack itself says: the users exist and the money moved.
    async with grpc.aio.insecure_channel(live.stack.address("IDENTITY_PORT")) as channel:
        identity = identity_service_pb2_grpc.IdentityServiceStub(channel)
        admin = await identity.Login(
            identity_pb.LoginRequest(email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
        )
    auth = (("authorization", f"Bearer {admin.tokens.access_token}"),)
    async with grpc.aio.insecure_channel(live.stack.address("WALLET_PORT")) as channel:
        wallet = wallet_service_pb2_grpc.WalletServiceStub(channel)
        payee = await wallet.GetWallet(
            wallet_pb.GetWalletRequest(user_id=report["payee_id"]), metadata=auth
        )
    balances = {b.currency_code: b.available_minor for b in payee.wallet.balances}
    assert balances.get("EUR") == TRANSFER_MINOR
