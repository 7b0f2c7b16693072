"""Identity scenarios: an authenticated read beside the bare ceiling, sign-in, and argon2id.

GetUser passes the whole interceptor chain (tracing, error mapping, token verification)
and reads one row. Login is bounded by design: password hashing has a CPU budget
(IDENTITY_PASSWORD_HASH_CORES, half a core by default), so its rate is the budget's and
calls beyond it wait or fail with RESOURCE_EXHAUSTED, which the table counts as errors.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import partial

from superapp.identity.v1 import identity_service_pb2 as pb
from superapp.identity.v1 import identity_service_pb2_grpc

from scripts.benchmark.environment import Environment
from scripts.benchmark.rpc_scenarios import GRPC_ECHO
from scripts.benchmark.scenario import Call, ClosedLoop, Sample, Scenario, Window
from services.identity.passwords import owasp_hasher
from services.runtime.ids import new_id

__all__ = ["identity_scenarios"]

_PASSWORD = "bench password of decent length"  # noqa: S105 - a throwaway bench account


async def _signed_in(env: Environment) -> tuple[str, pb.User, str]:
    """Identity's address, a fresh user and its access token."""
    address = await env.service("identity")
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
    return ClosedLoop(calls)


async def _login(env: Environment) -> ClosedLoop:
    address, user, _ = await _signed_in(env)
    request = pb.LoginRequest(email=user.email, password=_PASSWORD)
    calls: list[Call] = []
    for channel in await env.channels(address):
        stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        calls.append(partial(stub.Login, request, timeout=env.call_timeout))
    return ClosedLoop(calls)


@dataclass
class _Argon2Hash:
    """One OWASP argon2id hash at a time, in a worker thread as identity runs it."""

    async def measure(self, concurrency: int, window: Window) -> Sample:
        hasher = owasp_hasher()
        sample = Sample()
        end_warmup = time.perf_counter() + window.warmup
        while time.perf_counter() < end_warmup:
            await asyncio.to_thread(hasher.hash, _PASSWORD)
        start = time.perf_counter()
        while (began := time.perf_counter()) - start < window.duration:
            await asyncio.to_thread(hasher.hash, _PASSWORD)
            sample.latencies.append(time.perf_counter() - began)
        sample.elapsed = time.perf_counter() - start
        return sample


async def _argon2(env: Environment) -> _Argon2Hash:
    return _Argon2Hash()


def identity_scenarios() -> list[Scenario]:
    """GetUser against the echo ceiling; Login and the raw hash stand alone."""
    return [
        Scenario("identity.GetUser", _get_user, ceiling=GRPC_ECHO),
        Scenario("identity.Login", _login),
        Scenario("argon2id.hash (m=19MiB,t=2,p=1)", _argon2),
    ]
