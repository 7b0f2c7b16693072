"""ListTransactions answers any page token it did not issue with INVALID_PAGE_TOKEN.

One wallet per backend serves the whole module; the property test sends it tokens no
service issued and genuine tokens of other histories, and every one must be refused
the same way: never INTERNAL, never read as another place in a history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from superapp.wallet.v1 import wallet_service_pb2 as pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from scripts.nats_process import NatsProcess
from services.wallet.server import create_server
from tests.services.hostile_tokens import FUZZ, assert_refused, hostile_tokens, with_key
from tests.wallet.conftest import Account, Bank, running_bank


@dataclass(frozen=True)
class History:
    """One history as its owner reads it, and a genuine token for its second page."""

    account: Account
    currency_code: str
    token: str

    def request(self, token: str, page_size: int = 2) -> pb.ListTransactionsRequest:
        return pb.ListTransactionsRequest(
            user_id=self.account.user_id,
            currency_code=self.currency_code,
            page_size=page_size,
            page_token=token,
        )

    async def page(
        self, stub: wallet_service_pb2_grpc.WalletServiceStub, token: str, page_size: int = 2
    ) -> pb.ListTransactionsResponse:
        return await stub.ListTransactions(
            self.request(token, page_size), metadata=self.account.auth
        )


@pytest.fixture(scope="module")
async def bank(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Bank]:
    """One wallet per backend for the module, with its own NATS (see `own_nats`)."""
    data_dir = tmp_path_factory.mktemp("bank")
    with NatsProcess(data_dir / "nats") as nats:
        async with running_bank(module_database_url, data_dir, TracerProvider(), nats.url) as it:
            yield it


@pytest.fixture(scope="module")
async def histories(bank: Bank) -> list[History]:
    """Histories of two users, all currencies and one, each longer than a page."""
    ann, bob = await bank.user("ann"), await bank.user("bob")
    await bank.fund(ann, 1_000)
    await bank.fund(ann, 300, currency="USD")
    await bank.fund(ann, 200, currency="USD")
    await bank.fund(ann, 100, currency="USD")
    for amount in range(1, 5):
        await bank.transfer(ann, bob, amount)
    found = []
    for account, currency in [(ann, ""), (ann, "EUR"), (ann, "USD"), (bob, "")]:
        empty = History(account, currency, "")
        token = (await empty.page(bank.stub, "")).next_page_token
        assert token
        found.append(History(account, currency, token))
    return found


async def test_hand_made_positions_are_refused(bank: Bank, histories: list[History]) -> None:
    ann = histories[0]
    # Beyond int64 and a string were INTERNAL; the others were read as another place.
    for position in ["9223372036854775808", "1" + "0" * 30, '"abc"', '"3"', "2.5", "-1", "0", "1"]:
        await assert_refused(ann.page(bank.stub, with_key(ann.token, position)), position)


@FUZZ
@given(data=st.data())
async def test_tokens_it_did_not_issue_are_refused(
    bank: Bank, histories: list[History], data: st.DataObject
) -> None:
    target = data.draw(st.sampled_from(histories), label="history")
    genuine = [history.token for history in histories]
    # Another user's, or another currency's, or no one's.
    others = [token for token in genuine if token != target.token]
    token = data.draw(st.sampled_from(others) | hostile_tokens(genuine), label="token")
    await assert_refused(target.page(bank.stub, token), token)


async def test_tokens_walk_across_replicas_and_restarts(
    bank: Bank, histories: list[History]
) -> None:
    wholes = [await history.page(bank.stub, "", page_size=100) for history in histories]
    firsts = [await history.page(bank.stub, "", page_size=1) for history in histories]
    seen = [[t.transaction_id for t in first.transactions] for first in firsts]
    tokens = [first.next_page_token for first in firsts]

    async def walk(stub: wallet_service_pb2_grpc.WalletServiceStub, pages: int | None) -> None:
        for index, history in enumerate(histories):
            for _ in range(pages or 100):
                if not tokens[index]:
                    break
                page = await history.page(stub, tokens[index], page_size=1)
                seen[index] += [t.transaction_id for t in page.transactions]
                tokens[index] = page.next_page_token

    # Another wallet on the same database (a replica) continues what the first began...
    replica = await create_server(bank.settings, bank.tracer_provider)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
            await walk(wallet_service_pb2_grpc.WalletServiceStub(channel), pages=1)
    finally:
        await replica.stop(0)
    # ...and the first continues after a restart: the secret lives in the database.
    await bank.restart()
    await walk(bank.stub, pages=None)
    assert seen == [[t.transaction_id for t in whole.transactions] for whole in wholes]
    assert all(len(ids) > 2 for ids in seen)
