"""IdentityService over gRPC: translates requests, declares who may call what and what a
request's rules cannot say (the contract's rules are checked before any handler runs)."""

from __future__ import annotations

from typing import Any

import grpc
from superapp.identity.v1 import identity_service_pb2 as pb
from superapp.identity.v1 import identity_service_pb2_grpc

from services.auth.caller import require_caller
from services.auth.policy import AUTHENTICATED, TOKEN_IGNORED, ServicePolicies, authenticated
from services.auth.roles import Role
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
from services.runtime.contract_rules import ContractRules, RequestChecks, id_violation
from services.runtime.errors import PermissionDenied
from services.runtime.page_tokens import PageTokens
from services.runtime.proto_time import to_timestamp
from services.runtime.validation import RequestCheck, page_size

__all__ = ["POLICIES", "REQUEST_CHECKS", "IdentityServicer"]

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
_MUTABLE_PATHS = {"display_name"}
_OUTPUT_ONLY_PATHS = {"user_id", "email", "roles", "create_time", "update_time"}


def _check_registration(
    request: pb.RegisterUserRequest, check: RequestCheck, rules: ContractRules
) -> None:
    """An address's syntax is email-validator's (internationalised addresses included),
    a password's length is counted after NFKC: neither is a rule of the contract."""
    if not check.failed("email") and normalize_email(request.email) is None:
        check.fail("email", "is not a valid email address", "MALFORMED_EMAIL")
    if violation := password_violation(request.password):
        check.violations.append(violation)


def _check_update(request: pb.UpdateUserRequest, check: RequestCheck, rules: ContractRules) -> None:
    """The mask decides which of the user's fields count, so their rules are applied
    here (the contract tells protovalidate to skip `user`, whose id is output only
    anywhere else)."""
    if not request.HasField("user"):
        check.fail("user", "is required", "REQUIRED")
    if violation := id_violation("user.user_id", request.user.user_id):
        check.violations.append(violation)
    paths = list(request.update_mask.paths)
    if not paths:
        check.fail("update_mask", "must name at least one field", "REQUIRED")
    for path in paths:
        if path in _OUTPUT_ONLY_PATHS:
            check.fail("update_mask", f"{path} is output only", "OUTPUT_ONLY_FIELD")
        elif path not in _MUTABLE_PATHS:
            check.fail("update_mask", f"{path!r} is not an updatable field", "UNKNOWN_FIELD")
    check.extend(rules.violations_of(request.user, at="user", fields=paths))


REQUEST_CHECKS = RequestChecks(
    pb.DESCRIPTOR.services_by_name["IdentityService"],
    {"RegisterUser": _check_registration, "UpdateUser": _check_update},
)


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
        email = normalize_email(request.email)
        assert email is not None  # the request's checks ran: see _check_registration
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
        # A malformed address still goes through the same work as a wrong password.
        email = normalize_email(request.email) or request.email.strip().lower()
        client = self._clients.of(context.peer(), context.invocation_metadata())
        signed_in = await self._accounts.sign_in(email, request.password, client)
        return pb.LoginResponse(tokens=_tokens(signed_in.tokens), user=_user(signed_in.user))

    async def RefreshToken(
        self, request: pb.RefreshTokenRequest, context: Context
    ) -> pb.RefreshTokenResponse:
        tokens = await self._sessions.refresh(request.refresh_token)
        return pb.RefreshTokenResponse(tokens=_tokens(tokens))

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutResponse:
        await self._sessions.end(request.refresh_token)
        return pb.LogoutResponse()

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        # Checked before the look-up, so a stranger learns nothing about existence. A
        # service may read a profile: the BFF shows a mini-app the user's display name.
        require_caller().check_may_act_for(request.user_id, system=True)
        return pb.GetUserResponse(user=_user(await self._accounts.get(request.user_id)))

    async def UpdateUser(
        self, request: pb.UpdateUserRequest, context: Context
    ) -> pb.UpdateUserResponse:
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
        issued = self._service_clients.issue(request.client_id, request.client_secret)
        return pb.IssueServiceTokenResponse(
            access_token=issued.token,
            expire_time=to_timestamp(issued.expire_time),
            token_type="Bearer",  # noqa: S106 - the scheme name, not a secret
        )

    async def AuthorizeMiniApp(
        self, request: pb.AuthorizeMiniAppRequest, context: Context
    ) -> pb.AuthorizeMiniAppResponse:
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
        size = page_size(request.page_size)
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
        await self._consent.revoke(require_caller().user_id, request.grant_id)
        return pb.RevokeGrantResponse(grant_id=request.grant_id)

    async def IntrospectMiniAppToken(
        self, request: pb.IntrospectMiniAppTokenRequest, context: Context
    ) -> pb.IntrospectMiniAppTokenResponse:
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
