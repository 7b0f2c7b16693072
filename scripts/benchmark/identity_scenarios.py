"""Identity scenarios: an authenticated read beside the bare ceiling, sign-in, and argon2id.

GetUser passes the whole interceptor chain (tracing, error mapping, token verification)
and reads one row. RefreshToken rotates a refresh token and signs an access token: the
path of a signed-in app every few minutes, without a password hash. Login is bounded by
design: password hashing has a CPU budget (IDENTITY_PASSWORD_HASH_CORES, half a core by
default), so its rate is the budget's and calls beyond it wait or fail with
RESOURCE_EXHAUSTED, which the table counts as errors.

A failed sign-in must not tell an unknown email from a wrong password, by its answer or
by its time: `identity.Login unknown email` is held to the p50 of `identity.Login wrong
password`. Both run against an identity whose budget does not bind (8 cores), each call
from a client address of its own (`x-forwarded-for`, which identity believes from
127.0.0.1), so that neither the budget's waits nor the sign-in throttle set the pace.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial

import grpc
from superapp.identity.v1 import identity_service_pb2 as pb
from superapp.identity.v1 import identity_service_pb2_grpc

from scripts.benchmark.environment import Environment
from scripts.benchmark.process_cpu import Processes
from scripts.benchmark.rpc_scenarios import GRPC_ECHO
from scripts.benchmark.scenario import (
    Call,
    ClosedLoop,
    Sample,
    Scenario,
    Target,
    Window,
    server_meter,
)
from services.identity.passwords import owasp_hasher
from services.runtime.client_address import FORWARDED_FOR
from services.runtime.ids import new_id

__all__ = ["identity_scenarios"]

_PASSWORD = "bench password of decent length"  # noqa: S105 - a throwaway bench account
_WRONG = "not the password at all"
_KNOWN_EMAIL_LOGIN = "identity.Login wrong password"
# Hashing never waits for its budget here: the failures are timed, not the budget.
_UNBUDGETED = {"IDENTITY_PASSWORD_HASH_CORES": "8"}


async def _signed_in(
    env: Environment, settings: Mapping[str, str] | None = None
) -> tuple[str, pb.User, str]:
    """Identity's address (the instance with `settings`), a fresh user and its token."""
    address = await env.service("identity", settings)
    [channel] = (await env.channels(address))[:1]
    stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
    email = f"bench-{new_id()}@example.com"
    user = (
        await stub.RegisterUser(
            pb.RegisterUserRequest(
                email=email, password=_PASSWORD, display_name="Bench", request_id=new_id()
            )
        )
    ).user
    login = await stub.Login(pb.LoginRequest(email=email, password=_PASSWORD))
    return address, user, login.tokens.access_token


async def _get_user(env: Environment) -> ClosedLoop:
    address, user, token = await _signed_in(env)
    request = pb.GetUserRequest(user_id=user.user_id)
    metadata = (("authorization", f"Bearer {token}"),)
    calls: list[Call] = []
    for channel in await env.channels(address):
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        calls.append(partial(stub.GetUser, request, metadata=metadata, timeout=env.call_timeout))
    return ClosedLoop(calls, server=env.processes(address))


async def _login(env: Environment) -> ClosedLoop:
    address, user, _ = await _signed_in(env)
    request = pb.LoginRequest(email=user.email, password=_PASSWORD)
    calls: list[Call] = []
    for channel in await env.channels(address):
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        calls.append(partial(stub.Login, request, timeout=env.call_timeout))
    return ClosedLoop(calls, server=env.processes(address))


class _RefreshChains:
    """RefreshToken calls, each worker on a session of its own: a refresh token is good
    for one use, and presenting a used one again would revoke its whole session."""

    def __init__(
        self, stub: identity_service_pb2_grpc.IdentityServiceAsyncStub, email: str, timeout: float
    ) -> None:
        self._stub = stub
        self._email = email
        self._timeout = timeout
        self._idle: deque[str] = deque()

    async def __call__(self) -> None:
        # A new worker signs in once (in the warm-up); a failed call loses its session.
        token = self._idle.popleft() if self._idle else await self._sign_in()
        reply = await self._stub.RefreshToken(
            pb.RefreshTokenRequest(refresh_token=token), timeout=self._timeout
        )
        self._idle.append(reply.tokens.refresh_token)

    async def _sign_in(self) -> str:
        login = await self._stub.Login(
            pb.LoginRequest(email=self._email, password=_PASSWORD), timeout=self._timeout
        )
        return login.tokens.refresh_token


async def _refresh_token(env: Environment) -> ClosedLoop:
    address, user, _ = await _signed_in(env, _UNBUDGETED)
    calls: list[Call] = []
    for channel in await env.channels(address):
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        calls.append(_RefreshChains(stub, user.email, env.call_timeout))
    return ClosedLoop(calls, server=env.processes(address))


def _client_addresses() -> Iterator[str]:
    """10.0.0.1, 10.0.0.2, ...: a client address per sign-in, as the BFF reports it."""
    for number in itertools.count(1):
        yield f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"


class _WrongAnswer(Exception):
    """A sign-in that should have failed with INVALID_CREDENTIALS answered otherwise."""

    kind = "NOT_INVALID_CREDENTIALS"


async def _failed_login(
    stub: identity_service_pb2_grpc.IdentityServiceAsyncStub,
    email: str,
    clients: Iterator[str],
    deadline_seconds: float,
) -> None:
    request = pb.LoginRequest(email=email, password=_WRONG)
    metadata = ((FORWARDED_FOR, next(clients)),)
    try:
        await stub.Login(request, metadata=metadata, timeout=deadline_seconds)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            return
        raise  # counted by its status code
    raise _WrongAnswer


def _failed_logins(
    known_email: bool, clients: Iterator[str]
) -> Callable[[Environment], Awaitable[ClosedLoop]]:
    async def setup(env: Environment) -> ClosedLoop:
        address, user, _ = await _signed_in(env, _UNBUDGETED)
        email = user.email if known_email else f"nobody-{new_id()}@example.com"
        calls: list[Call] = []
        for channel in await env.channels(address):
            stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
            calls.append(partial(_failed_login, stub, email, clients, env.call_timeout))
        return ClosedLoop(calls, server=env.processes(address))

    return setup


@dataclass
class _Argon2Hash:
    """One OWASP argon2id hash at a time, in a worker thread as identity runs it, in
    the bench process (whose CPU time is the server side's)."""

    async def measure(self, concurrency: int, window: Window) -> Sample:
        hasher = owasp_hasher()
        sample = Sample()
        end_warmup = time.perf_counter() + window.warmup
        while time.perf_counter() < end_warmup:
            await asyncio.to_thread(hasher.hash, _PASSWORD)
        stop = server_meter(Processes.this_process()).start()
        start = time.perf_counter()
        while (began := time.perf_counter()) - start < window.duration:
            await asyncio.to_thread(hasher.hash, _PASSWORD)
            sample.latencies.append(time.perf_counter() - began)
        sample.elapsed = time.perf_counter() - start
        sample.cpu = stop()
        return sample


async def _argon2(env: Environment) -> _Argon2Hash:
    return _Argon2Hash()


def identity_scenarios() -> list[Scenario]:
    """GetUser against the echo ceiling; Login and the raw hash stand alone; a failed
    sign-in of an unknown email against one with a wrong password."""
    # One sequence for both, so that no client address fails twice.
    clients = _client_addresses()
    return [
        Scenario("identity.GetUser", _get_user, ceiling=GRPC_ECHO),
        Scenario("identity.Login", _login),
        Scenario("identity.RefreshToken", _refresh_token, ceiling=GRPC_ECHO),
        Scenario("argon2id.hash (m=19MiB,t=2,p=1)", _argon2),
        Scenario(_KNOWN_EMAIL_LOGIN, _failed_logins(known_email=True, clients=clients)),
        Scenario(
            "identity.Login unknown email",
            _failed_logins(known_email=False, clients=clients),
            ceiling=_KNOWN_EMAIL_LOGIN,
            latency_versus=_KNOWN_EMAIL_LOGIN,
            target=Target(
                "p50 ratio", at_least=0.8, at_most=1.25, source="as long as a wrong password"
            ),
        ),
    ]
