"""Mini-app consent and single sign-on, end to end on real servers.

Identity (on the parametrised database) learns mini-apps from the real miniapps
service's events over a real NATS: a developer registers and publishes a mini-app, a
user consents in the shell (AuthorizeMiniApp with their own token), the mini-app's
backend redeems the code (ExchangeAuthorizationCode, authenticating as its client) and
gets a token that any JOSE library verifies with the published JWKS. Then the OAuth
attacks of issue #24, each refused with its reason, revocation and suspension.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import warnings
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import identity_service_pb2 as id_pb
from superapp.miniapps.v1 import events_pb2
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from scripts.nats_process import NatsProcess
from services.auth import JwksCache, TokenVerifier, grpc_jwks_fetcher
from services.auth.miniapp_verifier import MiniAppTokenVerifier, miniapp_verifier
from services.auth.service_token import ServiceToken
from services.identity.service_clients import secret_digest
from services.miniapps.config import MiniAppsSettings
from services.miniapps.server import create_server as create_miniapps
from services.runtime.clock import SystemClock
from services.runtime.errors import Unauthenticated
from services.runtime.ids import new_id
from tests.identity.conftest import ADMIN_EMAIL, running_identity
from tests.miniapps.conftest import Metadata, Platform, good_bundle_files, zip_bundle
from tests.services.rich_errors import failure, rich_error

pytestmark = pytest.mark.slow(seconds=20)

ISSUER = "superapp-identity"
SERVICE_CLIENT, SERVICE_SECRET = "bff", "a-service-client-secret-for-introspection"
REDIRECT = "https://bills.example.com/callback"
SCOPES = ["profile.basic", "wallet.pay"]


def _manifest_files(version: str) -> dict[str, str]:
    files = good_bundle_files(version)
    manifest = json.loads(files["manifest.json"])
    manifest["permissions"] = [
        {"name": "profile.basic", "justification": "To greet you by name."},
        {"name": "wallet.pay", "justification": "To pay the bill you pick."},
    ]
    files["manifest.json"] = json.dumps(manifest)
    return files


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class MiniApp:
    """A published mini-app and its backend's credentials."""

    mini_app_id: str
    client_id: str
    client_secret: str


@dataclass
class Stack:
    """Miniapps and identity on one bus, and what a resource server uses to verify."""

    platform: Platform
    verifier: MiniAppTokenVerifier
    service_token: ServiceToken
    identity_channel: grpc.aio.Channel

    @property
    def identity(self) -> Any:
        return self.platform.identity.stub

    async def published(self) -> MiniApp:
        """A mini-app registered, checked, approved and published; identity knows it."""
        _, developer = await self.platform.developer()
        _, reviewer = await self.platform.reviewer()
        registered = await self.platform.registered(developer)
        app = registered.mini_app
        uploaded = await self.platform.uploaded(
            developer, app.mini_app_id, zip_bundle(_manifest_files("1.0.0"))
        )
        await self.platform.stub.SubmitVersion(
            pb.SubmitVersionRequest(version_id=uploaded.version_id, request_id=new_id()),
            metadata=developer,
        )
        await asyncio.wait_for(self._in_review(uploaded.version_id, developer), 60)
        await self.platform.stub.ApproveVersion(
            pb.ApproveVersionRequest(version_id=uploaded.version_id, request_id=new_id()),
            metadata=reviewer,
        )
        await self.platform.stub.PublishVersion(
            pb.PublishVersionRequest(version_id=uploaded.version_id, request_id=new_id()),
            metadata=developer,
        )
        mini_app = MiniApp(app.mini_app_id, app.client_id, registered.client_secret)
        await asyncio.wait_for(self._known(mini_app), 30)
        return mini_app

    async def _in_review(self, version_id: str, developer: Metadata) -> None:
        while True:
            reply = await self.platform.stub.GetVersion(
                pb.GetVersionRequest(version_id=version_id), metadata=developer
            )
            if reply.version.state == pb.VERSION_STATE_IN_REVIEW:
                assert list(reply.version.permissions) == SCOPES
                return
            assert reply.version.state in (pb.VERSION_STATE_SUBMITTED, pb.VERSION_STATE_CHECKING)
            await asyncio.sleep(0.05)

    async def _known(self, app: MiniApp) -> None:
        """Until identity has applied the publication (its scopes) from the bus."""
        _, probe = await self.platform.person()
        while True:
            try:
                await self.authorize(probe, app)
                return
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.05)

    async def authorize(
        self,
        user: Metadata,
        app: MiniApp,
        *,
        granted: Sequence[str] = SCOPES,
        requested: Sequence[str] = SCOPES,
        redirect_uri: str = REDIRECT,
        challenge: str | None = None,
        method: str = "S256",
    ) -> tuple[id_pb.AuthorizeMiniAppResponse, str]:
        """The shell's consent call; the reply and the PKCE verifier it was made with."""
        verifier, derived = _pkce()
        reply = await self.identity.AuthorizeMiniApp(
            id_pb.AuthorizeMiniAppRequest(
                client_id=app.client_id,
                redirect_uri=redirect_uri,
                requested_scopes=requested,
                granted_scopes=granted,
                code_challenge=challenge or derived,
                code_challenge_method=method,
                state="xyz",
            ),
            metadata=user,
        )
        return reply, verifier

    def exchange(
        self,
        app: MiniApp,
        code: str,
        verifier: str,
        *,
        redirect_uri: str = REDIRECT,
        scopes: Sequence[str] = (),
        secret: str | None = None,
    ) -> Any:
        """The mini-app backend's token request (a call to await)."""
        return self.identity.ExchangeAuthorizationCode(
            id_pb.ExchangeAuthorizationCodeRequest(
                client_id=app.client_id,
                client_secret=secret or app.client_secret,
                code=code,
                redirect_uri=redirect_uri,
                code_verifier=verifier,
                scopes=scopes,
            )
        )

    async def token(self, user: Metadata, app: MiniApp) -> id_pb.ExchangeAuthorizationCodeResponse:
        """Consent and exchange: a mini-app token for `user`."""
        authorized, verifier = await self.authorize(user, app)
        reply: id_pb.ExchangeAuthorizationCodeResponse = await self.exchange(
            app, authorized.code, verifier
        )
        return reply

    async def introspect(self, token: str) -> id_pb.IntrospectMiniAppTokenResponse:
        reply: id_pb.IntrospectMiniAppTokenResponse = await self.identity.IntrospectMiniAppToken(
            id_pb.IntrospectMiniAppTokenRequest(token=token),
            metadata=await self.service_token.metadata(),
        )
        return reply

    async def jwks(self) -> dict[str, Any]:
        reply = await self.identity.GetJwks(id_pb.GetJwksRequest())
        return {
            "keys": [
                {f: getattr(k, f) for f in ("kty", "crv", "x", "kid", "alg", "use")}
                for k in reply.keys
            ]
        }


@contextlib.asynccontextmanager
async def running_stack(
    database_url: str, data_dir: Path, tracer_provider: TracerProvider, nats_url: str
) -> AsyncIterator[Stack]:
    """Identity on `database_url` with a service client for introspection; miniapps on
    SQLite beside it, on the same NATS."""
    clock = SystemClock()
    async with running_identity(
        database_url,
        data_dir / "identity",
        tracer_provider,
        nats_url,
        service_clients={SERVICE_CLIENT: secret_digest(SERVICE_SECRET)},
    ) as identity:
        (data_dir / "miniapps").mkdir(parents=True, exist_ok=True)
        settings = MiniAppsSettings(
            port=0,
            relay="task",
            data_dir=data_dir / "miniapps",
            database_url=f"sqlite+aiosqlite:///{data_dir / 'miniapps' / 'miniapps.db'}",
            nats_url=nats_url,
            identity_addr=f"127.0.0.1:{identity.service.port}",
            # A thread, not a worker process: the small test bundles review quickly.
            check_workers=0,
        )
        miniapps = await create_miniapps(settings, tracer_provider)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{miniapps.port}")
        identity_channel = grpc.aio.insecure_channel(f"127.0.0.1:{identity.service.port}")
        try:
            platform = Platform(miniapps, channel, identity, settings, tracer_provider)
            _, platform.admin = await identity.signed_up(ADMIN_EMAIL)
            service_token = ServiceToken(identity_channel, SERVICE_CLIENT, SERVICE_SECRET, clock)
            verifier = miniapp_verifier(identity_channel, service_token, issuer=ISSUER, clock=clock)
            yield Stack(platform, verifier, service_token, identity_channel)
        finally:
            await identity_channel.close()
            await channel.close()
            await miniapps.stop(0)


@pytest.fixture(scope="module")
async def stack(
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    nats_server: NatsProcess,
) -> AsyncIterator[Stack]:
    """Identity on the parametrised database, miniapps and a resource server's verifier,
    shared by the module's tests: each publishes its own mini-apps and signs up its own
    users, so none sees another's grants, codes or tokens."""
    async with running_stack(
        module_database_url,
        tmp_path_factory.mktemp("oauth"),
        TracerProvider(),
        nats_server.url,
    ) as it:
        yield it


def _jose_claims(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims as an independent JOSE library reads them with the JWKS."""
    with warnings.catch_warnings():
        # joserfc notes that RFC 9864 prefers the fully specified "Ed25519" to "EdDSA";
        # identity's JWKS and tokens say EdDSA, which every JOSE library still knows.
        warnings.simplefilter("ignore")
        decoded = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["EdDSA"])
    return dict(decoded.header), dict(decoded.claims)


async def test_consent_exchange_and_a_token_the_jwks_verifies(stack: Stack) -> None:
    bills, other = await stack.published(), await stack.published()
    user_id, user = await stack.platform.person()
    authorized, verifier = await stack.authorize(user, bills, granted=["wallet.pay"])
    assert authorized.state == "xyz"
    assert list(authorized.grant.scopes) == ["wallet.pay"]
    reply = await stack.exchange(bills, authorized.code, verifier)
    assert (list(reply.scopes), reply.token_type) == (["wallet.pay"], "Bearer")
    header, claims = _jose_claims(reply.access_token, await stack.jwks())
    assert header["typ"] == "miniapp+jwt"
    assert claims["aud"] == claims["azp"] == claims["client_id"] == bills.client_id
    assert (claims["iss"], claims["scope"], claims["sub"]) == (ISSUER, "wallet.pay", reply.subject)
    assert claims["exp"] - claims["iat"] == 300
    assert "roles" not in claims
    # Identity authenticated the backend from the digest miniapps put on the bus.
    registered = events_pb2.MiniAppRegistered()
    payloads = await stack.platform.events("superapp.miniapps.mini_app.registered")
    digests = set()
    for payload in payloads:
        registered.ParseFromString(payload)
        digests.add(registered.client_secret_sha256)
    assert secret_digest(bills.client_secret) in digests
    # The user's real id reaches the mini-app nowhere: not in the token, not in the reply.
    assert user_id not in json.dumps([header, claims]) + str(reply)
    # Pairwise: stable for one user and mini-app, unrelated across mini-apps.
    again = await stack.token(user, bills)
    elsewhere = await stack.token(user, other)
    assert again.subject == reply.subject
    assert elsewhere.subject not in (reply.subject, "")
    _, someone = await stack.platform.person()
    assert (await stack.token(someone, bills)).subject != reply.subject
    # A resource server accepts it for its own mini-app and learns the real user.
    caller = await stack.verifier.verify(again.access_token, audience=bills.client_id)
    assert (caller.user_id, caller.subject, caller.scopes) == (
        user_id,
        reply.subject,
        frozenset(SCOPES),
    )
    first = await stack.identity.ListMyGrants(id_pb.ListMyGrantsRequest(page_size=1), metadata=user)
    rest = await stack.identity.ListMyGrants(
        id_pb.ListMyGrantsRequest(page_size=1, page_token=first.next_page_token), metadata=user
    )
    assert rest.next_page_token == ""
    # Newest first; bills' grant was widened to both scopes by the later consent.
    assert [(g.client_id, list(g.scopes)) for g in [*first.grants, *rest.grants]] == [
        (other.client_id, SCOPES),
        (bills.client_id, SCOPES),
    ]
    # Another user's page token is not this user's.
    _, stranger = await stack.platform.person()
    foreign = await failure(
        stack.identity.ListMyGrants(
            id_pb.ListMyGrantsRequest(page_token=first.next_page_token), metadata=stranger
        )
    )
    assert foreign.info.reason == "INVALID_PAGE_TOKEN"


async def test_a_mini_app_token_is_never_a_user_token(stack: Stack) -> None:
    app = await stack.published()
    user_id, user = await stack.platform.person()
    token = (await stack.token(user, app)).access_token
    refused = await failure(
        stack.identity.GetUser(
            id_pb.GetUserRequest(user_id=user_id),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    )
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )
    users_verifier = TokenVerifier(
        JwksCache(grpc_jwks_fetcher(stack.identity_channel), clock=SystemClock()),
        issuer=ISSUER,
        audience="superapp",
        clock=SystemClock(),
    )
    with pytest.raises(Unauthenticated, match="not an access token"):
        await users_verifier.verify(token)
    # And a user's token is not a mini-app token.
    user_token = dict(user)["authorization"].removeprefix("Bearer ")
    with pytest.raises(Unauthenticated, match="not a mini-app token"):
        await stack.verifier.verify(user_token, audience=app.client_id)
    assert not (await stack.introspect(user_token)).active


async def test_a_code_is_single_use_and_reuse_revokes_what_it_bought(stack: Stack) -> None:
    app = await stack.published()
    _, user = await stack.platform.person()
    authorized, verifier = await stack.authorize(user, app)
    first = await stack.exchange(app, authorized.code, verifier)
    assert (await stack.introspect(first.access_token)).active
    reused = await failure(stack.exchange(app, authorized.code, verifier))
    assert (reused.code, reused.info.reason, reused.info.metadata["cause"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_GRANT",
        "code_reused",
    )
    assert reused.info.metadata["oauth_error"] == "invalid_grant"
    assert not (await stack.introspect(first.access_token)).active
    with pytest.raises(Unauthenticated):
        await stack.verifier.verify(first.access_token, audience=app.client_id)
    grants = await stack.identity.ListMyGrants(id_pb.ListMyGrantsRequest(), metadata=user)
    assert list(grants.grants) == []


async def test_two_redemptions_at_once_buy_one_token_and_revoke_it(stack: Stack) -> None:
    app = await stack.published()
    _, user = await stack.platform.person()
    authorized, verifier = await stack.authorize(user, app)
    outcomes = await asyncio.gather(
        stack.exchange(app, authorized.code, verifier),
        stack.exchange(app, authorized.code, verifier),
        return_exceptions=True,
    )
    tokens = [o for o in outcomes if isinstance(o, id_pb.ExchangeAuthorizationCodeResponse)]
    errors = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert (len(tokens), len(errors)) == (1, 1)
    assert rich_error(errors[0]).info.metadata["cause"] == "code_reused"
    assert not (await stack.introspect(tokens[0].access_token)).active


async def test_a_service_cannot_consent_for_nobody(stack: Stack) -> None:
    app = await stack.published()
    refused = await failure(stack.authorize(await stack.service_token.metadata(), app))
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )


async def test_oauth_attacks_are_refused(stack: Stack) -> None:
    app, other = await stack.published(), await stack.published()
    _, user = await stack.platform.person()

    async def refused(call: Any) -> tuple[grpc.StatusCode, str, str]:
        error = await failure(call)
        return error.code, error.info.reason, error.info.metadata.get("cause", "")

    authorized, verifier = await stack.authorize(user, app)
    code = authorized.code
    # PKCE: a verifier that is not the challenge's.
    wrong_verifier, _ = _pkce()
    assert await refused(stack.exchange(app, code, wrong_verifier)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_GRANT",
        "pkce_mismatch",
    )
    # Redirect URI: another registered one, and one never registered.
    for uri in ("http://127.0.0.1:8080/cb", "https://evil.example.com/callback"):
        assert await refused(stack.exchange(app, code, verifier, redirect_uri=uri)) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "INVALID_GRANT",
            "redirect_uri_mismatch",
        )
    unregistered = await failure(
        stack.authorize(user, app, redirect_uri="https://evil.example.com/callback")
    )
    assert unregistered.info.reason == "INVALID_REDIRECT_URI"
    # Another mini-app's backend cannot redeem it, with its own secret or a guessed one.
    stolen = MiniApp(other.mini_app_id, other.client_id, other.client_secret)
    assert await refused(stack.exchange(stolen, code, verifier)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_GRANT",
        "unknown_code",
    )
    assert await refused(stack.exchange(app, code, verifier, secret="mas_" + "x" * 43)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CLIENT",
        "",
    )
    # Scope escalation at the token endpoint: the code carries wallet.pay only.
    narrow, narrow_verifier = await stack.authorize(user, app, granted=["wallet.pay"])
    escalated = await failure(
        stack.exchange(app, narrow.code, narrow_verifier, scopes=["profile.basic"])
    )
    assert (escalated.code, escalated.info.reason, escalated.info.metadata["scope"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_SCOPE",
        "profile.basic",
    )
    # At consent: a scope the manifest does not request, or granted but not requested.
    beyond = await failure(stack.authorize(user, app, requested=["contacts"], granted=[]))
    assert (beyond.info.reason, beyond.info.metadata["scope"]) == ("INVALID_SCOPE", "contacts")
    unasked = await failure(stack.authorize(user, app, requested=["wallet.pay"]))
    assert (unasked.info.reason, unasked.info.metadata["scope"]) == (
        "INVALID_SCOPE",
        "profile.basic",
    )
    # PKCE "plain" is refused outright.
    plain = await failure(stack.authorize(user, app, challenge="p" * 43, method="plain"))
    assert plain.violations == {"code_challenge_method": "UNSUPPORTED_CHALLENGE_METHOD"}
    # The code still works for its own client after all that, once, and its token
    # holds no more than the grant now does (the user narrowed it to wallet.pay).
    redeemed = await stack.exchange(app, code, verifier)
    assert list(redeemed.scopes) == ["wallet.pay"]
    token = redeemed.access_token
    # One mini-app's token used against another: refused by the resource server.
    with pytest.raises(Unauthenticated, match="another mini-app"):
        await stack.verifier.verify(token, audience=other.client_id)
    assert (await stack.verifier.verify(token, audience=app.client_id)).client_id == (app.client_id)


async def test_revoked_grant_stops_its_tokens_and_codes(stack: Stack) -> None:
    app = await stack.published()
    _, user = await stack.platform.person()
    _, stranger = await stack.platform.person()
    token = (await stack.token(user, app)).access_token
    # A resource server verified it once: it remembers identity's answer briefly.
    await stack.verifier.verify(token, audience=app.client_id)
    pending, verifier = await stack.authorize(user, app)
    grant_id = pending.grant.grant_id
    # Only the grant's user may revoke it.
    foreign = await failure(
        stack.identity.RevokeGrant(id_pb.RevokeGrantRequest(grant_id=grant_id), metadata=stranger)
    )
    assert (foreign.code, foreign.info.reason) == (grpc.StatusCode.NOT_FOUND, "GRANT_NOT_FOUND")
    await stack.identity.RevokeGrant(id_pb.RevokeGrantRequest(grant_id=grant_id), metadata=user)
    await stack.identity.RevokeGrant(id_pb.RevokeGrantRequest(grant_id=grant_id), metadata=user)
    listed = await stack.identity.ListMyGrants(id_pb.ListMyGrantsRequest(), metadata=user)
    assert list(listed.grants) == []
    assert not (await stack.introspect(token)).active

    async def refused_by_resource_server() -> str:
        while True:
            try:
                await stack.verifier.verify(token, audience=app.client_id)
            except Unauthenticated as error:
                return error.message
            await asyncio.sleep(0.05)

    # Within its cache time (2 s), not asserted as a duration: the machine may be busy.
    assert "revoked" in await asyncio.wait_for(refused_by_resource_server(), 30)
    revoked = await failure(stack.exchange(app, pending.code, verifier))
    assert (revoked.info.reason, revoked.info.metadata["cause"]) == (
        "INVALID_GRANT",
        "grant_revoked",
    )
    # Consent again makes a new grant; the old tokens stay dead.
    fresh = await stack.token(user, app)
    assert (await stack.introspect(fresh.access_token)).grant_id != grant_id
    assert not (await stack.introspect(token)).active


async def test_suspended_mini_app_is_refused_everywhere(stack: Stack) -> None:
    app = await stack.published()
    _, user = await stack.platform.person()
    _, reviewer = await stack.platform.reviewer()
    token = (await stack.token(user, app)).access_token
    pending, verifier = await stack.authorize(user, app)
    await stack.platform.stub.SuspendMiniApp(
        pb.SuspendMiniAppRequest(mini_app_id=app.mini_app_id, reason="abuse", request_id=new_id()),
        metadata=reviewer,
    )

    async def inactive() -> None:
        while True:
            if not (await stack.introspect(token)).active:
                return
            await asyncio.sleep(0.05)

    # The suspension travels on the bus; it holds within seconds.
    await asyncio.wait_for(inactive(), 30)
    with pytest.raises(Unauthenticated):
        await stack.verifier.verify(token, audience=app.client_id)
    exchange = await failure(stack.exchange(app, pending.code, verifier))
    consent = await failure(stack.authorize(user, app))
    assert {exchange.info.reason, consent.info.reason} == {"CLIENT_SUSPENDED"}


async def test_introspection_is_for_services_only(stack: Stack) -> None:
    _, user = await stack.platform.person()
    denied = await failure(
        stack.identity.IntrospectMiniAppToken(
            id_pb.IntrospectMiniAppTokenRequest(token="x.y.z"), metadata=user
        )
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert not (await stack.introspect("not-a-token")).active
