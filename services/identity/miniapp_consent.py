"""Consent and single sign-on for mini-apps: OAuth 2.0 authorization code with PKCE.

The shell asks for a code on the user's behalf (`authorize`) after the user chose which
of the published scopes to grant; the mini-app's backend redeems it, authenticating as
its client (`exchange`), for a short-lived token with a pairwise subject. Users list
and revoke their grants; platform services ask whether a token is still in force
(`introspect`). The S256 check is Authlib's (RFC 7636), the error codes RFC 6749's
(carried as `oauth_error` in the ErrorInfo metadata).

Codes are 256 random bits, stored only as their SHA-256, valid once for 60 seconds.
A second redemption revokes the code's grant, so the token the first one issued stops
working as well (RFC 6749 §4.1.2). Every change runs in one transaction of identity's
database, which all its replicas share: a revocation holds on each at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import errors as oauth_errors
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.miniapp_tokens import MiniAppTokenReader
from services.database import Database
from services.identity.miniapp_clients import ClientStatus, MiniAppClient, MiniAppClients
from services.identity.miniapp_token_issuer import MiniAppTokenIssuer
from services.identity.models import OAUTH_CODES, OAUTH_GRANTS, User
from services.identity.pairwise_subjects import PairwiseSubjects
from services.runtime.clock import Clock
from services.runtime.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServiceError,
    Unauthenticated,
)
from services.runtime.ids import new_id

__all__ = [
    "CODE_TTL",
    "Authorization",
    "ConsentRequest",
    "Exchange",
    "ExchangeRequest",
    "GrantPage",
    "GrantRecord",
    "IntrospectionRecord",
    "MiniAppConsent",
]

CODE_TTL = timedelta(seconds=60)
"""How long an authorization code may be redeemed (RFC 6749 §4.1.2: at most 10 min)."""

_G, _K = OAUTH_GRANTS.c, OAUTH_CODES.c
# Authlib's S256 check (RFC 7636 §4.6), the only method accepted: "plain" would let a
# stolen code's challenge serve as its verifier.
_S256 = CodeChallenge.CODE_CHALLENGE_METHODS["S256"]
# Compared against when the client id is unknown, so that case costs what a wrong
# secret costs.
_NO_DIGEST = "0" * 64


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """A user's consent to one mini-app."""

    grant_id: str
    user_id: str
    client_id: str
    mini_app_id: str
    scopes: tuple[str, ...]
    create_time: datetime
    update_time: datetime
    revoke_time: datetime | None


def _grant(row: Row[Any]) -> GrantRecord:
    return GrantRecord(
        grant_id=row.grant_id,
        user_id=row.user_id,
        client_id=row.client_id,
        mini_app_id=row.mini_app_id,
        scopes=tuple(row.scopes),
        create_time=row.create_time,
        update_time=row.update_time,
        revoke_time=row.revoke_time,
    )


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """What the shell sends after the consent prompt, validated for form."""

    client_id: str
    redirect_uri: str
    requested_scopes: tuple[str, ...]
    granted_scopes: tuple[str, ...]
    code_challenge: str


@dataclass(frozen=True, slots=True)
class Authorization:
    """A fresh code (shown once) and the grant it belongs to."""

    code: str
    expire_time: datetime
    grant: GrantRecord


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """What the mini-app's backend sends to redeem a code, validated for form."""

    client_id: str
    client_secret: str
    code: str
    redirect_uri: str
    code_verifier: str
    scopes: tuple[str, ...]
    """Empty: all the code carries."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """The token a redeemed code bought."""

    access_token: str
    expire_time: datetime
    scopes: tuple[str, ...]
    subject: str


@dataclass(frozen=True, slots=True)
class GrantPage:
    """One page of a user's grants and the id to continue after, if there is more."""

    grants: list[GrantRecord]
    next_after: str | None


@dataclass(frozen=True, slots=True)
class IntrospectionRecord:
    """Identity's answer about a mini-app token; `grant` is None when it is not active."""

    grant: GrantRecord | None
    subject: str = ""
    scopes: tuple[str, ...] = ()
    expire_time: datetime | None = None


def invalid_grant(cause: str, message: str) -> FailedPrecondition:
    """RFC 6749 `invalid_grant`, with why in `cause`."""
    return FailedPrecondition(
        "INVALID_GRANT",
        message,
        metadata={"cause": cause, "oauth_error": oauth_errors.InvalidGrantError.error},
    )


def invalid_scope(scope: str, message: str) -> InvalidArgument:
    """RFC 6749 `invalid_scope` for `scope`."""
    error = InvalidArgument(
        [FieldViolation("scopes", message, "INVALID_SCOPE")], reason="INVALID_SCOPE"
    )
    error.metadata = {"scope": scope, "oauth_error": oauth_errors.InvalidScopeError.error}
    return error


def _client_suspended(client_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "CLIENT_SUSPENDED",
        "the mini-app is suspended",
        metadata={"client_id": client_id, "oauth_error": oauth_errors.AccessDeniedError.error},
    )


def _client_not_found(client_id: str) -> NotFound:
    return NotFound(
        "CLIENT_NOT_FOUND",
        "no published mini-app has this client id",
        metadata={"client_id": client_id},
    )


def _invalid_client() -> Unauthenticated:
    return Unauthenticated(
        "INVALID_CLIENT",
        "unknown client or wrong secret",
        metadata={"oauth_error": oauth_errors.InvalidClientError.error},
    )


def _grant_not_found(grant_id: str) -> NotFound:
    return NotFound(
        "GRANT_NOT_FOUND", "no grant of yours has this id", metadata={"grant_id": grant_id}
    )


def _first_outside(scopes: Sequence[str], allowed: Sequence[str]) -> str | None:
    return next((scope for scope in scopes if scope not in allowed), None)


class MiniAppConsent:
    """The authorization server's rules; see the module doc."""

    def __init__(
        self,
        *,
        database: Database,
        clients: MiniAppClients,
        issuer: MiniAppTokenIssuer,
        reader: MiniAppTokenReader,
        subjects: PairwiseSubjects,
        clock: Clock,
    ) -> None:
        self._database = database
        self._clients = clients
        self._issuer = issuer
        self._reader = reader
        self._subjects = subjects
        self._clock = clock

    async def authorize(self, user_id: str, asked: ConsentRequest) -> Authorization:
        """Record the user's consent and issue a code bound to it (see the contract)."""
        async with self._database.write() as session:
            # One consent of a user at a time, so two prompts answered at once cannot
            # make two live grants for one mini-app (PostgreSQL; SQLite has one writer).
            found = await session.scalar(
                select(User.user_id).where(User.user_id == user_id).with_for_update()
            )
            if found is None:  # a service's token: its subject is no user
                raise PermissionDenied("PERMISSION_DENIED", "only a user can consent")
            client = await self._clients.get(session, asked.client_id)
            if client is None or not client.published:
                raise _client_not_found(asked.client_id)
            if client.status is not ClientStatus.ACTIVE:
                raise _client_suspended(client.client_id)
            if asked.redirect_uri not in client.redirect_uris:
                raise InvalidArgument(
                    [
                        FieldViolation(
                            "redirect_uri",
                            "is not a redirect URI the mini-app registered",
                            "INVALID_REDIRECT_URI",
                        )
                    ],
                    reason="INVALID_REDIRECT_URI",
                )
            if (scope := _first_outside(asked.requested_scopes, client.scopes)) is not None:
                raise invalid_scope(scope, f"{scope!r} is not requested by the published manifest")
            if (scope := _first_outside(asked.granted_scopes, asked.requested_scopes)) is not None:
                raise invalid_scope(scope, f"{scope!r} was granted but not requested")
            grant = await self._granted(session, user_id, client, sorted(set(asked.granted_scopes)))
            code, now = secrets.token_urlsafe(32), self._clock.now()
            await session.execute(
                OAUTH_CODES.insert().values(
                    code_sha256=_digest(code),
                    grant_id=grant.grant_id,
                    client_id=client.client_id,
                    user_id=user_id,
                    redirect_uri=asked.redirect_uri,
                    scopes=list(grant.scopes),
                    code_challenge=asked.code_challenge,
                    create_time=now,
                    expire_time=now + CODE_TTL,
                    use_time=None,
                )
            )
        return Authorization(code, now + CODE_TTL, grant)

    async def _granted(
        self, session: AsyncSession, user_id: str, client: MiniAppClient, scopes: list[str]
    ) -> GrantRecord:
        """The user's live grant to `client`, made or with its scopes replaced."""
        now = self._clock.now()
        row = (
            await session.execute(
                select(OAUTH_GRANTS).where(
                    _G.user_id == user_id,
                    _G.client_id == client.client_id,
                    _G.revoke_time.is_(None),
                )
            )
        ).first()
        if row is None:
            grant = GrantRecord(
                grant_id=new_id(),
                user_id=user_id,
                client_id=client.client_id,
                mini_app_id=client.mini_app_id,
                scopes=tuple(scopes),
                create_time=now,
                update_time=now,
                revoke_time=None,
            )
            await session.execute(
                OAUTH_GRANTS.insert().values(
                    grant_id=grant.grant_id,
                    user_id=user_id,
                    client_id=client.client_id,
                    mini_app_id=client.mini_app_id,
                    scopes=scopes,
                    create_time=now,
                    update_time=now,
                    revoke_time=None,
                )
            )
            return grant
        existing = _grant(row)
        if list(existing.scopes) == scopes:
            return existing
        await session.execute(
            OAUTH_GRANTS.update()
            .where(_G.grant_id == existing.grant_id)
            .values(scopes=scopes, update_time=now)
        )
        return dataclasses.replace(existing, scopes=tuple(scopes), update_time=now)

    async def exchange(self, asked: ExchangeRequest) -> Exchange:
        """Redeem a code for a token (see the contract); a reused code revokes its grant."""
        async with self._database.read() as session:
            client = await self._clients.get(session, asked.client_id)
        expected = client.secret_sha256 if client is not None else _NO_DIGEST
        if not hmac.compare_digest(_digest(asked.client_secret), expected) or client is None:
            raise _invalid_client()
        if client.status is not ClientStatus.ACTIVE:
            raise _client_suspended(client.client_id)
        refusal: ServiceError | None = None
        async with self._database.write() as session:
            outcome = await self._redeem(session, client, asked)
            if isinstance(outcome, ServiceError):
                # Committed with whatever the refusal changed (a reused code's grant
                # revoked), then raised.
                refusal = outcome
            else:
                code_row, grant = outcome
        if refusal is not None:
            raise refusal
        wanted = asked.scopes or code_row.scopes
        # Never more than the grant holds now (the user may have narrowed it since), nor
        # than the published manifest requests now (a new version may ask for less).
        scopes = tuple(sorted(set(wanted) & set(grant.scopes) & set(client.scopes)))
        subject = self._subjects.subject(client.client_id, grant.user_id)
        issued = self._issuer.issue(
            client_id=client.client_id, subject=subject, scopes=scopes, grant_id=grant.grant_id
        )
        return Exchange(issued.token, issued.expire_time, scopes, subject)

    async def _redeem(
        self, session: AsyncSession, client: MiniAppClient, asked: ExchangeRequest
    ) -> tuple[Row[Any], GrantRecord] | ServiceError:
        now = self._clock.now()
        code_row = (
            await session.execute(
                select(OAUTH_CODES).where(_K.code_sha256 == _digest(asked.code)).with_for_update()
            )
        ).first()
        # A code of another client is as unknown to this one as a made-up code.
        if code_row is None or code_row.client_id != client.client_id:
            return invalid_grant("unknown_code", "unknown authorization code")
        grant_row = (
            await session.execute(
                select(OAUTH_GRANTS).where(_G.grant_id == code_row.grant_id).with_for_update()
            )
        ).one()
        grant = _grant(grant_row)
        if code_row.use_time is not None:
            if grant.revoke_time is None:
                await session.execute(
                    OAUTH_GRANTS.update()
                    .where(_G.grant_id == grant.grant_id)
                    .values(revoke_time=now, update_time=now)
                )
            return invalid_grant("code_reused", "the code was used before; its grant is revoked")
        if now >= code_row.expire_time:
            return invalid_grant("expired", "the authorization code expired")
        if grant.revoke_time is not None:
            return invalid_grant("grant_revoked", "the user revoked this grant")
        if not hmac.compare_digest(asked.redirect_uri, code_row.redirect_uri):
            return invalid_grant(
                "redirect_uri_mismatch", "redirect_uri is not the one the code was issued for"
            )
        if not _S256(asked.code_verifier, code_row.code_challenge):
            return invalid_grant("pkce_mismatch", "code_verifier does not match the challenge")
        if (scope := _first_outside(asked.scopes, code_row.scopes)) is not None:
            return invalid_scope(scope, f"{scope!r} is not among the scopes the code carries")
        await session.execute(
            OAUTH_CODES.update().where(_K.code_sha256 == code_row.code_sha256).values(use_time=now)
        )
        return code_row, grant

    async def grants(self, user_id: str, *, after: str | None, size: int) -> GrantPage:
        """The user's live grants, newest first, after the id `after`."""
        query: Select[Any] = select(OAUTH_GRANTS).where(
            _G.user_id == user_id, _G.revoke_time.is_(None)
        )
        if after is not None:
            query = query.where(_G.grant_id < after)
        query = query.order_by(_G.grant_id.desc()).limit(size + 1)
        async with self._database.read() as session:
            rows = (await session.execute(query)).all()
        grants = [_grant(row) for row in rows[:size]]
        return GrantPage(grants, grants[-1].grant_id if len(rows) > size else None)

    async def revoke(self, user_id: str, grant_id: str) -> None:
        """Revoke the user's grant (again is fine); NOT_FOUND `GRANT_NOT_FOUND` for a
        grant that is not theirs."""
        async with self._database.write() as session:
            row = (
                await session.execute(
                    select(_G.user_id, _G.revoke_time)
                    .where(_G.grant_id == grant_id)
                    .with_for_update()
                )
            ).first()
            if row is None or row.user_id != user_id:
                raise _grant_not_found(grant_id)
            if row.revoke_time is None:
                now = self._clock.now()
                await session.execute(
                    OAUTH_GRANTS.update()
                    .where(_G.grant_id == grant_id)
                    .values(revoke_time=now, update_time=now)
                )

    async def introspect(self, token: str) -> IntrospectionRecord:
        """Whether `token` is in force: valid, its grant live and still covering its
        scopes, its mini-app active (RFC 7662; never an error for a bad token)."""
        try:
            claims = await self._reader.read(token)
        except Unauthenticated:
            return IntrospectionRecord(None)
        async with self._database.read() as session:
            row = (
                await session.execute(select(OAUTH_GRANTS).where(_G.grant_id == claims.grant_id))
            ).first()
            client = await self._clients.get(session, claims.client_id)
        grant = None if row is None else _grant(row)
        if (
            grant is None
            or grant.revoke_time is not None
            or grant.client_id != claims.client_id
            or not claims.scopes <= set(grant.scopes)
            or client is None
            or client.status is not ClientStatus.ACTIVE
            or not claims.scopes <= set(client.scopes)
        ):
            return IntrospectionRecord(None)
        return IntrospectionRecord(
            grant, claims.subject, tuple(sorted(claims.scopes)), claims.expire_time
        )
