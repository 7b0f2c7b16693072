"""IdentityService over gRPC: validates and translates requests, declares who may call what."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import grpc
from authlib.oauth2.rfc7636.challenge import CODE_CHALLENGE_PATTERN, CODE_VERIFIER_PATTERN
from superapp.identity.v1 import identity_service_pb2 as pb
from superapp.identity.v1 import identity_service_pb2_grpc

from services.auth.caller import require_caller
from services.auth.policy import AUTHENTICATED, TOKEN_IGNORED, ServicePolicies, authenticated
from services.auth.roles import Role
from services.auth.verifier import MAX_TOKEN_LENGTH
from services.database.idempotency import IdempotentWrites
from services.identity.accounts import Accounts, normalize_email, password_violation
from services.identity.miniapp_consent import (
    ConsentRequest,
    ExchangeRequest,
    GrantRecord,
    MiniAppConsent,
)
from services.identity.models import UserFields
from services.identity.service_clients import ServiceClients
from services.identity.sessions import Sessions, SessionTokens, roles_of
from services.identity.signing_keys import SigningKeys
from services.runtime.client_address import ClientAddresses
from services.runtime.errors import PermissionDenied
from services.runtime.page_tokens import PageTokens
from services.runtime.proto_time import to_timestamp
from services.runtime.validation import RequestCheck

__all__ = ["POLICIES", "IdentityServicer"]

Context = grpc.aio.ServicerContext[Any, Any]

POLICIES = ServicePolicies(
    pb.DESCRIPTOR.services_by_name["IdentityService"],
    {
        # Sign-up and sign-in must work whatever stale token a client still sends.
        "RegisterUser": TOKEN_IGNORED,
        "Login": TOKEN_IGNORED,
        "RefreshToken": TOKEN_IGNORED,
        "Logout": TOKEN_IGNORED,
        "GetJwks": TOKEN_IGNORED,
        # A service authenticates with its client secret, never with a token.
        "IssueServiceToken": TOKEN_IGNORED,
        "GetUser": AUTHENTICATED,
        "UpdateUser": AUTHENTICATED,
        "SetUserRoles": authenticated(Role.ADMIN),
        # The user consents for themself, with their own token.
        "AuthorizeMiniApp": AUTHENTICATED,
        # A mini-app's backend authenticates as its OAuth client, never with a token.
        "ExchangeAuthorizationCode": TOKEN_IGNORED,
        "ListMyGrants": AUTHENTICATED,
        "RevokeGrant": AUTHENTICATED,
        # The answer holds the user's real id: platform services only.
        "IntrospectMiniAppToken": authenticated(Role.SYSTEM),
    },
)
EMAIL_MAX = 254
CLIENT_ID_MAX = 64
REDIRECT_URI_MAX = 2048
STATE_MAX = 512
SCOPE_MAX = 64
# RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
_SCOPE_TOKEN = re.compile(rf"[\x21\x23-\x5b\x5d-\x7e]{{1,{SCOPE_MAX}}}")
DISPLAY_NAME_MAX = 100
_MUTABLE_PATHS = {"display_name"}
_OUTPUT_ONLY_PATHS = {"user_id", "email", "roles", "create_time", "update_time"}


def _user(user: UserFields) -> pb.User:
    return pb.User(
        user_id=user.user_id,
        email=user.email,
        display_name=user.display_name,
        roles=[pb.Role.Value(f"ROLE_{role.upper()}") for role in roles_of(user)],
        create_time=to_timestamp(user.create_time),
        update_time=to_timestamp(user.update_time),
    )


def _tokens(tokens: SessionTokens) -> pb.TokenPair:
    return pb.TokenPair(
        access_token=tokens.access_token,
        access_token_expire_time=to_timestamp(tokens.access_token_expire_time),
        refresh_token=tokens.refresh_token,
        refresh_token_expire_time=to_timestamp(tokens.refresh_token_expire_time),
        token_type="Bearer",  # noqa: S106 - the scheme name, not a secret
    )


def _check_display_name(check: RequestCheck, field: str, value: str) -> None:
    check.required_text(field, value, max_length=DISPLAY_NAME_MAX)
    if value and not value.isprintable():
        check.fail(field, "must not contain control characters", "INVALID_CHARACTERS")


class IdentityServicer(identity_service_pb2_grpc.IdentityServiceServicer):
    """The identity gRPC service."""

    def __init__(
        self,
        *,
        accounts: Accounts,
        sessions: Sessions,
        keys: SigningKeys,
        writes: IdempotentWrites,
        service_clients: ServiceClients,
        clients: ClientAddresses,
        consent: MiniAppConsent,
        page_tokens: PageTokens,
    ) -> None:
        self._consent = consent
        self._page_tokens = page_tokens
        self._service_clients = service_clients
        self._accounts = accounts
        self._clients = clients
        self._sessions = sessions
        self._keys = keys
        self._writes = writes

    async def RegisterUser(
        self, request: pb.RegisterUserRequest, context: Context
    ) -> pb.RegisterUserResponse:
        check = RequestCheck()
        email = _checked_email(check, request.email)
        if violation := password_violation(request.password):
            check.violations.append(violation)
        _check_display_name(check, "display_name", request.display_name)
        check.request_id(request.request_id)
        check.done()
        assert email is not None
        password_hash = await self._accounts.hash_password(request.password)

        async def register(session: Any) -> pb.RegisterUserResponse:
            user = await self._accounts.register(
                session, email, password_hash, request.display_name
            )
            return pb.RegisterUserResponse(user=_user(user))

        # The idempotency fingerprint is a fast digest: it must never cover the password.
        asked = pb.RegisterUserRequest(email=email, display_name=request.display_name)
        return await self._writes.run(
            scope="anonymous",
            request_id=request.request_id,
            method="RegisterUser",
            request=asked,
            response_type=pb.RegisterUserResponse,
            mutate=register,
        )

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        check = RequestCheck()
        check.required_text("email", request.email, max_length=EMAIL_MAX)
        check.required_text("password", request.password, max_length=1024)
        check.done()
        # A malformed address still goes through the same work as a wrong password.
        email = normalize_email(request.email) or request.email.strip().lower()
        client = self._clients.of(context.peer(), context.invocation_metadata())
        signed_in = await self._accounts.sign_in(email, request.password, client)
        return pb.LoginResponse(tokens=_tokens(signed_in.tokens), user=_user(signed_in.user))

    async def RefreshToken(
        self, request: pb.RefreshTokenRequest, context: Context
    ) -> pb.RefreshTokenResponse:
        check = RequestCheck()
        check.required_text("refresh_token", request.refresh_token, max_length=256)
        check.done()
        tokens = await self._sessions.refresh(request.refresh_token)
        return pb.RefreshTokenResponse(tokens=_tokens(tokens))

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutResponse:
        check = RequestCheck()
        check.required_text("refresh_token", request.refresh_token, max_length=256)
        check.done()
        await self._sessions.end(request.refresh_token)
        return pb.LogoutResponse()

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        check = RequestCheck()
        check.uuid("user_id", request.user_id)
        check.done()
        # Checked before the look-up, so a stranger learns nothing about existence.
        require_caller().check_may_act_for(request.user_id)
        return pb.GetUserResponse(user=_user(await self._accounts.get(request.user_id)))

    async def UpdateUser(
        self, request: pb.UpdateUserRequest, context: Context
    ) -> pb.UpdateUserResponse:
        check = RequestCheck()
        if not request.HasField("user"):
            check.fail("user", "is required", "REQUIRED")
        check.uuid("user.user_id", request.user.user_id)
        paths = list(request.update_mask.paths)
        if not paths:
            check.fail("update_mask", "must name at least one field", "REQUIRED")
        for path in paths:
            if path in _OUTPUT_ONLY_PATHS:
                check.fail("update_mask", f"{path} is output only", "OUTPUT_ONLY_FIELD")
            elif path not in _MUTABLE_PATHS:
                check.fail("update_mask", f"{path!r} is not an updatable field", "UNKNOWN_FIELD")
        if "display_name" in paths:
            _check_display_name(check, "user.display_name", request.user.display_name)
        check.request_id(request.request_id)
        check.done()
        caller = require_caller()
        caller.check_may_act_for(request.user.user_id)

        async def update(session: Any) -> pb.UpdateUserResponse:
            user = await self._accounts.update_profile(
                session, request.user.user_id, request.user.display_name
            )
            return pb.UpdateUserResponse(user=_user(user))

        return await self._writes.run(
            scope=caller.user_id,
            request_id=request.request_id,
            method="UpdateUser",
            request=request,
            response_type=pb.UpdateUserResponse,
            mutate=update,
        )

    async def SetUserRoles(
        self, request: pb.SetUserRolesRequest, context: Context
    ) -> pb.SetUserRolesResponse:
        check = RequestCheck()
        check.uuid("user_id", request.user_id)
        if not request.roles:
            check.fail("roles", "must name at least one role", "REQUIRED")
        for index, role in enumerate(request.roles):
            check.enum(f"roles[{index}]", role, pb.Role, required=True)
        check.request_id(request.request_id)
        check.done()
        caller = require_caller()
        if not caller.has_role(Role.ADMIN):  # the policy says so too; the handler never trusts
            raise PermissionDenied("PERMISSION_DENIED", "only an admin may set roles")
        roles = [pb.Role.Name(role).removeprefix("ROLE_").lower() for role in request.roles]

        async def set_roles(session: Any) -> pb.SetUserRolesResponse:
            user = await self._accounts.set_roles(session, request.user_id, roles)
            return pb.SetUserRolesResponse(user=_user(user))

        return await self._writes.run(
            scope=caller.user_id,
            request_id=request.request_id,
            method="SetUserRoles",
            request=request,
            response_type=pb.SetUserRolesResponse,
            mutate=set_roles,
        )

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> pb.GetJwksResponse:
        return pb.GetJwksResponse(keys=[pb.Jwk(**jwk) for jwk in self._keys.jwks()])

    async def IssueServiceToken(
        self, request: pb.IssueServiceTokenRequest, context: Context
    ) -> pb.IssueServiceTokenResponse:
        check = RequestCheck()
        check.required_text("client_id", request.client_id, max_length=64)
        check.required_text("client_secret", request.client_secret, max_length=256)
        check.done()
        issued = self._service_clients.issue(request.client_id, request.client_secret)
        return pb.IssueServiceTokenResponse(
            access_token=issued.token,
            expire_time=to_timestamp(issued.expire_time),
            token_type="Bearer",  # noqa: S106 - the scheme name, not a secret
        )

    async def AuthorizeMiniApp(
        self, request: pb.AuthorizeMiniAppRequest, context: Context
    ) -> pb.AuthorizeMiniAppResponse:
        check = RequestCheck()
        check.required_text("client_id", request.client_id, max_length=CLIENT_ID_MAX)
        check.required_text("redirect_uri", request.redirect_uri, max_length=REDIRECT_URI_MAX)
        check.text("state", request.state, max_length=STATE_MAX)
        if not CODE_CHALLENGE_PATTERN.fullmatch(request.code_challenge):
            check.fail(
                "code_challenge",
                "must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)",
                "INVALID_CODE_CHALLENGE",
            )
        if request.code_challenge_method != "S256":
            check.fail(
                "code_challenge_method",
                'must be "S256"; "plain" and others are not accepted',
                "UNSUPPORTED_CHALLENGE_METHOD",
            )
        _check_scopes(check, "requested_scopes", request.requested_scopes, required=True)
        _check_scopes(check, "granted_scopes", request.granted_scopes, required=False)
        check.done()
        caller = require_caller()
        authorization = await self._consent.authorize(
            caller.user_id,
            ConsentRequest(
                client_id=request.client_id,
                redirect_uri=request.redirect_uri,
                requested_scopes=tuple(request.requested_scopes),
                granted_scopes=tuple(request.granted_scopes),
                code_challenge=request.code_challenge,
            ),
        )
        return pb.AuthorizeMiniAppResponse(
            code=authorization.code,
            state=request.state,
            redirect_uri=request.redirect_uri,
            expire_time=to_timestamp(authorization.expire_time),
            grant=_grant(authorization.grant),
        )

    async def ExchangeAuthorizationCode(
        self, request: pb.ExchangeAuthorizationCodeRequest, context: Context
    ) -> pb.ExchangeAuthorizationCodeResponse:
        check = RequestCheck()
        check.required_text("client_id", request.client_id, max_length=CLIENT_ID_MAX)
        check.required_text("client_secret", request.client_secret, max_length=256)
        check.required_text("code", request.code, max_length=128)
        check.required_text("redirect_uri", request.redirect_uri, max_length=REDIRECT_URI_MAX)
        if not CODE_VERIFIER_PATTERN.fullmatch(request.code_verifier):
            check.fail(
                "code_verifier",
                "must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)",
                "INVALID_CODE_VERIFIER",
            )
        _check_scopes(check, "scopes", request.scopes, required=False)
        check.done()
        exchange = await self._consent.exchange(
            ExchangeRequest(
                client_id=request.client_id,
                client_secret=request.client_secret,
                code=request.code,
                redirect_uri=request.redirect_uri,
                code_verifier=request.code_verifier,
                scopes=tuple(request.scopes),
            )
        )
        return pb.ExchangeAuthorizationCodeResponse(
            access_token=exchange.access_token,
            token_type="Bearer",  # noqa: S106 - the scheme name, not a secret
            expire_time=to_timestamp(exchange.expire_time),
            scopes=exchange.scopes,
            subject=exchange.subject,
        )

    async def ListMyGrants(
        self, request: pb.ListMyGrantsRequest, context: Context
    ) -> pb.ListMyGrantsResponse:
        check = RequestCheck()
        size = check.page_size(request.page_size)
        check.done()
        caller = require_caller()
        scope = ("ListMyGrants", caller.user_id)
        after = self._page_tokens.decode(request.page_token, scope, (str,))
        page = await self._consent.grants(
            caller.user_id, after=str(after[0]) if after else None, size=size
        )
        return pb.ListMyGrantsResponse(
            grants=[_grant(grant) for grant in page.grants],
            next_page_token=(
                self._page_tokens.encode([page.next_after], scope) if page.next_after else ""
            ),
        )

    async def RevokeGrant(
        self, request: pb.RevokeGrantRequest, context: Context
    ) -> pb.RevokeGrantResponse:
        check = RequestCheck()
        check.uuid("grant_id", request.grant_id)
        check.done()
        await self._consent.revoke(require_caller().user_id, request.grant_id)
        return pb.RevokeGrantResponse(grant_id=request.grant_id)

    async def IntrospectMiniAppToken(
        self, request: pb.IntrospectMiniAppTokenRequest, context: Context
    ) -> pb.IntrospectMiniAppTokenResponse:
        check = RequestCheck()
        check.required_text("token", request.token, max_length=MAX_TOKEN_LENGTH)
        check.done()
        found = await self._consent.introspect(request.token)
        if found.grant is None or found.expire_time is None:
            return pb.IntrospectMiniAppTokenResponse(active=False)
        return pb.IntrospectMiniAppTokenResponse(
            active=True,
            client_id=found.grant.client_id,
            scopes=found.scopes,
            subject=found.subject,
            user_id=found.grant.user_id,
            grant_id=found.grant.grant_id,
            expire_time=to_timestamp(found.expire_time),
        )


def _grant(grant: GrantRecord) -> pb.Grant:
    return pb.Grant(
        grant_id=grant.grant_id,
        client_id=grant.client_id,
        mini_app_id=grant.mini_app_id,
        scopes=grant.scopes,
        create_time=to_timestamp(grant.create_time),
        update_time=to_timestamp(grant.update_time),
    )


def _check_scopes(
    check: RequestCheck, field: str, scopes: Sequence[str], *, required: bool
) -> None:
    if required and not scopes:
        check.fail(field, "must name at least one scope", "REQUIRED")
    if len(set(scopes)) != len(scopes):
        check.fail(field, "must not repeat a scope", "DUPLICATE_SCOPE")
    for index, scope in enumerate(scopes):
        if not _SCOPE_TOKEN.fullmatch(scope):
            check.fail(
                f"{field}[{index}]",
                f"must be 1 to {SCOPE_MAX} printable ASCII characters without spaces, "
                "quotes or backslashes (RFC 6749 scope-token)",
                "INVALID_SCOPE_TOKEN",
            )


def _checked_email(check: RequestCheck, raw: str) -> str | None:
    if not raw:
        check.fail("email", "is required", "REQUIRED")
        return None
    if len(raw) > EMAIL_MAX:
        check.fail("email", f"must be at most {EMAIL_MAX} characters", "TOO_LONG")
        return None
    email = normalize_email(raw)
    if email is None:
        check.fail("email", "is not a valid email address", "MALFORMED_EMAIL")
    return email
