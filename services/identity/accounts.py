"""Accounts: sign-up, sign-in, profile and roles. Identity is the source of truth for users."""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.identity.v1 import events_pb2, identity_service_pb2

from services.auth.roles import Role
from services.database import Database
from services.eventbus import Outbox
from services.identity.account_metrics import AccountMetrics, LoginOutcome
from services.identity.login_throttle import LoginThrottling
from services.identity.models import User, UserRecord
from services.identity.passwords import Busy, Passwords
from services.identity.sessions import Sessions, SessionTokens, roles_of
from services.runtime.clock import Clock
from services.runtime.errors import (
    AlreadyExists,
    FieldViolation,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
)
from services.runtime.ids import new_id
from services.runtime.proto_time import to_timestamp

__all__ = ["Accounts", "SignedIn", "normalize_email", "password_violation"]

# Stored and announced in the proto enum order, as tokens list them.
ROLE_ORDER = tuple(Role)
PASSWORD_MIN, PASSWORD_MAX = 8, 128


def normalize_email(raw: str) -> str | None:
    """The canonical lower-case address, or None when it is not an email address."""
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


def password_violation(password: str) -> FieldViolation | None:
    """NIST 800-63B: length only (8 to 128 code points after NFKC), no composition rules."""
    length = len(unicodedata.normalize("NFKC", password))
    if length < PASSWORD_MIN:
        return FieldViolation(
            "password", f"must be at least {PASSWORD_MIN} characters", "PASSWORD_TOO_SHORT"
        )
    if length > PASSWORD_MAX:
        return FieldViolation(
            "password", f"must be at most {PASSWORD_MAX} characters", "PASSWORD_TOO_LONG"
        )
    return None


def _ordered(roles: Iterable[str]) -> str:
    wanted = set(roles)
    return ",".join(role for role in ROLE_ORDER if role in wanted)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A successful sign-in: the session's tokens and who signed in."""

    tokens: SessionTokens
    user: User


class Accounts:
    """Business rules of users; every state change announces itself through the outbox."""

    def __init__(
        self,
        *,
        database: Database,
        passwords: Passwords,
        throttling: LoginThrottling,
        sessions: Sessions,
        outbox: Outbox,
        clock: Clock,
        bootstrap_admin_email: str,
        metrics: AccountMetrics,
    ) -> None:
        self._database = database
        self._passwords = passwords
        self._throttling = throttling
        self._sessions = sessions
        self._outbox = outbox
        self._clock = clock
        self._bootstrap_admin = normalize_email(bootstrap_admin_email) or ""
        self._metrics = metrics

    async def hash_password(self, password: str) -> str:
        """The password's hash, computed before any transaction opens (it takes a while)."""
        try:
            return await self._passwords.hash(password)
        except Busy as busy:
            raise _rate_limited(busy) from None

    async def register(
        self, session: AsyncSession, email: str, password_hash: str, display_name: str
    ) -> User:
        """Create the account and announce UserRegistered, in `session`'s transaction."""
        now = self._clock.now()
        roles = ["user", "admin"] if email == self._bootstrap_admin else ["user"]
        taken = await session.scalar(select(User.user_id).where(User.email == email))
        if taken is not None:
            raise _email_taken(email)
        user = User(
            user_id=new_id(),
            email=email,
            display_name=display_name,
            password_hash=password_hash,
            roles=_ordered(roles),
            create_time=now,
            update_time=now,
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError:  # a concurrent sign-up of the same email won the race
            raise _email_taken(email) from None
        event = events_pb2.UserRegistered(
            user_id=user.user_id,
            email=email,
            display_name=display_name,
            occur_time=to_timestamp(user.update_time),
        )
        event.roles.extend(_role_numbers(roles_of(user)))
        await self._outbox.record(session, event, aggregate_id=user.user_id)
        self._metrics.registered(session)
        return user

    async def sign_in(self, email: str, password: str, client: str) -> SignedIn:
        """Check the credentials of a sign-in from the client address `client` and start
        a session.

        An unknown email and a wrong password fail alike, after the same hashing work, and
        both count towards the throttle of (email, client) and of client.
        """
        try:
            async with self._passwords.turn() as hashing:
                attempt = await self._throttling.admit(email, client, self._clock.now())
                found = await self._database.lookup(_USER_BY_EMAIL, {"email": email})
                encoded = found[0].password_hash if found else None
                matched = await hashing.verify(encoded, password)
        except Busy as busy:
            self._metrics.login(LoginOutcome.THROTTLED)
            raise _rate_limited(busy) from None
        except ResourceExhausted:
            self._metrics.login(LoginOutcome.THROTTLED)
            raise
        if not matched:
            await self._throttling.failed(attempt, self._clock.now())
            self._metrics.login(
                LoginOutcome.WRONG_PASSWORD if found else LoginOutcome.UNKNOWN_ACCOUNT
            )
            raise Unauthenticated("INVALID_CREDENTIALS", "email or password is wrong")
        assert encoded is not None
        new_hash = None
        if self._passwords.needs_rehash(encoded):
            # An upgrade can wait for a sign-in that finds the budget free.
            with contextlib.suppress(Busy):
                new_hash = await self._passwords.hash(password)
        async with self._database.write() as session:
            await self._throttling.succeeded(session, attempt)
            current = await session.get(User, found[0].user_id)
            if current is None:
                self._metrics.login(LoginOutcome.UNKNOWN_ACCOUNT)
                raise Unauthenticated("INVALID_CREDENTIALS", "email or password is wrong")
            if new_hash is not None:
                current.password_hash = new_hash
            tokens = await self._sessions.start(session, current)
        self._metrics.login(LoginOutcome.SUCCESS)  # the session is committed
        return SignedIn(tokens, current)

    async def get(self, user_id: str) -> UserRecord:
        """The user; NOT_FOUND `USER_NOT_FOUND` if there is none."""
        rows = await self._database.lookup(_USER_BY_ID, {"user_id": user_id})
        if not rows:
            raise _not_found(user_id)
        return UserRecord(**rows[0]._mapping)

    async def update_profile(self, session: AsyncSession, user_id: str, display_name: str) -> User:
        """Change the display name; announces UserUpdated only if something changed."""
        user = await _locked(session, user_id)
        if user.display_name != display_name:
            user.display_name = display_name
            await self._changed(session, user, ["display_name"])
        return user

    async def set_roles(self, session: AsyncSession, user_id: str, roles: Iterable[str]) -> User:
        """Replace the user's roles; announces UserUpdated only if they changed."""
        user = await _locked(session, user_id)
        ordered = _ordered(roles)
        if user.roles != ordered:
            user.roles = ordered
            await self._changed(session, user, ["roles"])
        return user

    async def grant_bootstrap_admin(self) -> None:
        """Give the configured first admin the admin role, if that account exists."""
        if not self._bootstrap_admin:
            return
        async with self._database.write() as session:
            user = await session.scalar(select(User).where(User.email == self._bootstrap_admin))
            if user is not None and "admin" not in roles_of(user):
                await self.set_roles(session, user.user_id, [*roles_of(user), "admin"])

    async def _changed(self, session: AsyncSession, user: User, paths: list[str]) -> None:
        user.update_time = self._clock.now()
        await session.flush()
        event = events_pb2.UserUpdated(
            user_id=user.user_id,
            email=user.email,
            display_name=user.display_name,
            changed_paths=paths,
            occur_time=to_timestamp(user.update_time),
        )
        event.roles.extend(_role_numbers(roles_of(user)))
        await self._outbox.record(session, event, aggregate_id=user.user_id)


_USERS = User.__table__.c
_USER_BY_ID = select(
    _USERS.user_id,
    _USERS.email,
    _USERS.display_name,
    _USERS.roles,
    _USERS.create_time,
    _USERS.update_time,
).where(_USERS.user_id == bindparam("user_id"))
_USER_BY_EMAIL = select(_USERS.user_id, _USERS.password_hash).where(
    _USERS.email == bindparam("email")
)


async def _locked(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise _not_found(user_id)
    return user


def _role_numbers(roles: Iterable[str]) -> list[identity_service_pb2.Role.ValueType]:
    return [identity_service_pb2.Role.Value(f"ROLE_{role.upper()}") for role in roles]


def _not_found(user_id: str) -> NotFound:
    return NotFound(
        "USER_NOT_FOUND", f"user {user_id} does not exist", metadata={"user_id": user_id}
    )


def _email_taken(email: str) -> AlreadyExists:
    return AlreadyExists(
        "EMAIL_TAKEN", "an account with this email exists already", metadata={"email": email}
    )


def _rate_limited(busy: Busy) -> ResourceExhausted:
    return ResourceExhausted(
        "RATE_LIMITED",
        "the service is checking passwords at its configured rate; retry shortly",
        retry_after_seconds=busy.retry_after,
    )
