"""The token endpoint of mini-apps' backends: `POST /oauth2/token`, RFC 6749 §4.1.3.

This endpoint speaks OAuth, not the rest of the API's problem+json: a mini-app's backend
uses an off-the-shelf OAuth client library, which expects a form-encoded request, client
authentication by HTTP Basic (client_secret_basic) or in the body (client_secret_post),
and §5.2's `{"error": ...}` with 400/401. Failures OAuth does not define (429, 5xx) stay
problem+json like everywhere else.

identity's ExchangeAuthorizationCode does the work; this module only translates the
form and credentials in and the error reasons out.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import grpc
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from superapp.identity.v1 import identity_service_pb2 as pb

from bff import schemas
from bff.dependencies import UpstreamsDep
from bff.mini_app_metrics import MiniAppMetrics
from bff.openapi import errors
from bff.rate_limits import limit_auth
from services.runtime.status_details import StatusDetails

__all__ = ["TOKEN_PATH", "router"]

TOKEN_PATH = "/oauth2/token"  # noqa: S105  # a path, not a secret
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# RFC 6749 §5.1 and §5.2: token responses are never cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

router = APIRouter(tags=["oauth"])

_RFC7636 = r"^[A-Za-z0-9._~-]{43,128}$"
# identity's limits (ExchangeAuthorizationCode), so a generated client sends nothing
# identity refuses for its form alone.
_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["grant_type", "code", "redirect_uri", "code_verifier"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["authorization_code"]},
        "code": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": "The code the consent returned.",
        },
        "redirect_uri": {
            "type": "string",
            "minLength": 1,
            "maxLength": 2048,
            "description": "The redirect URI the code was issued for.",
        },
        "code_verifier": {
            "type": "string",
            "pattern": _RFC7636,
            "description": "The PKCE verifier (RFC 7636).",
        },
        "client_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "client_secret_post (else HTTP Basic authentication).",
        },
        "client_secret": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "client_secret_post.",
        },
        "scope": {
            "type": "string",
            "pattern": r"^[\x21\x23-\x5b\x5d-\x7e]{1,64}( [\x21\x23-\x5b\x5d-\x7e]{1,64})*$",
            "description": "Optional: a subset of the code's scopes, separated by spaces.",
        },
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **{
        status: spec
        for status, spec in errors(429).items()
        if isinstance(status, int) and status >= 429
    },
    200: {"description": "The token (RFC 6749 §5.1); never cached."},
    400: {
        "model": schemas.OAuthError,
        "description": "RFC 6749 §5.2: invalid_request, invalid_grant, invalid_scope, "
        "unauthorized_client (a suspended mini-app) or unsupported_grant_type.",
    },
    401: {
        "model": schemas.OAuthError,
        "description": "RFC 6749 §5.2 invalid_client: unknown client or wrong secret.",
        "headers": {
            "WWW-Authenticate": {
                "description": "Basic, when the client authenticated with HTTP Basic.",
                "schema": {"type": "string"},
            }
        },
    },
}


class OAuthFailure(Exception):
    """An RFC 6749 §5.2 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class _Client:
    client_id: str
    client_secret: str
    basic: bool


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as error:
        raise OAuthFailure("invalid_request", "the body is not a valid form") from error
    repeated = sorted(name for name, values in fields.items() if len(values) > 1)
    if repeated:  # RFC 6749 §3.2: parameters MUST NOT be included more than once
        raise OAuthFailure("invalid_request", f"repeated parameter: {repeated[0]}")
    return {name: values[0] for name, values in fields.items()}


def _client(request: Request, form: dict[str, str]) -> _Client:
    header = request.headers.get("authorization")
    in_body = "client_id" in form or "client_secret" in form
    if header is not None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthFailure(
                "invalid_client", "client authentication is HTTP Basic or in the body", 401
            )
        if "client_secret" in form:  # RFC 6749 §2.3: one method only
            raise OAuthFailure("invalid_request", "authenticate in one way, not two")
        try:
            pair = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise OAuthFailure("invalid_client", "malformed Basic credentials", 401) from error
        raw_id, colon, raw_secret = pair.partition(":")
        if not colon:
            raise OAuthFailure("invalid_client", "malformed Basic credentials", 401)
        # RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if form.get("client_id", client_id) != client_id:
            raise OAuthFailure("invalid_request", "client_id differs from the Basic one")
        return _Client(client_id, secret, basic=True)
    if not in_body:
        raise OAuthFailure("invalid_client", "client authentication is required", 401)
    return _Client(form.get("client_id", ""), form.get("client_secret", ""), basic=False)


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthFailure("invalid_request", f"missing parameter: {name}")
    return value


# identity's reasons as RFC 6749 §5.2 errors.
_ERRORS = {
    "INVALID_CLIENT": ("invalid_client", 401),
    "INVALID_GRANT": ("invalid_grant", 400),
    "INVALID_SCOPE": ("invalid_scope", 400),
    "CLIENT_SUSPENDED": ("unauthorized_client", 400),
    "INVALID_ARGUMENT": ("invalid_request", 400),
}


def _failure(error: grpc.aio.AioRpcError) -> OAuthFailure | None:
    info = StatusDetails.of(error).error_info
    mapped = _ERRORS.get(info.reason) if info is not None else None
    if mapped is None:
        return None
    name, status = mapped
    return OAuthFailure(name, error.details() or name.replace("_", " "), status)


def _count(request: Request, client: _Client | None, error: str | None) -> None:
    # Only a client identity vouched for is a label: an unknown or unauthenticated
    # client id is whatever a caller typed.
    if client is None or error == "invalid_client":
        return
    metrics: MiniAppMetrics = request.app.state.mini_app_metrics
    metrics.called(client.client_id, TOKEN_PATH, error)


def _answer(failure: OAuthFailure, client: _Client | None) -> JSONResponse:
    headers = dict(_NO_STORE)
    if failure.status == 401 and (client is None or client.basic):
        headers["WWW-Authenticate"] = 'Basic realm="oauth2", charset="UTF-8"'
    body = schemas.OAuthError.model_validate(
        {"error": failure.error, "error_description": failure.description}
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=failure.status, headers=headers)


@router.post(
    TOKEN_PATH,
    response_model=schemas.TokenResponse,
    responses=_RESPONSES,
    dependencies=[Depends(limit_auth)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_MEDIA_TYPE: {"schema": _FORM_SCHEMA}},
        }
    },
    summary="Exchange an authorization code for a mini-app token (OAuth 2.0)",
)
async def token(request: Request, upstreams: UpstreamsDep) -> JSONResponse:
    """RFC 6749 §4.1.3 with PKCE (RFC 7636): the mini-app's backend, authenticated by
    its client id and secret (HTTP Basic, or `client_id`/`client_secret` in the form),
    redeems the code the user's consent produced. The answer is OAuth's, not
    problem+json: `{"access_token", "token_type", "expires_in", "scope"}`, and errors
    are `{"error", "error_description"}` with 400 (401 `invalid_client`). A code is
    redeemed once; a second exchange revokes its grant (`invalid_grant`)."""
    client: _Client | None = None
    try:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != FORM_MEDIA_TYPE:
            raise OAuthFailure("invalid_request", f"the body must be {FORM_MEDIA_TYPE}")
        form = _form(await request.body())
        client = _client(request, form)
        grant_type = _required(form, "grant_type")
        if grant_type != "authorization_code":
            raise OAuthFailure("unsupported_grant_type", "only authorization_code")
        exchange = pb.ExchangeAuthorizationCodeRequest(
            client_id=client.client_id,
            client_secret=client.client_secret,
            code=_required(form, "code"),
            redirect_uri=_required(form, "redirect_uri"),
            code_verifier=_required(form, "code_verifier"),
            scopes=form.get("scope", "").split(),
        )
        try:
            reply = await upstreams.identity.ExchangeAuthorizationCode(exchange)
        except grpc.aio.AioRpcError as error:
            failure = _failure(error)
            if failure is None:
                raise  # not OAuth's to answer: problem+json (503, 504, 500)
            if failure.error != "invalid_request":
                _count(request, client, failure.error)  # identity knew the client
            raise failure from error
    except OAuthFailure as failure:
        return _answer(failure, client)
    _count(request, client, None)
    expires = reply.expire_time.ToDatetime(tzinfo=UTC)
    answer = schemas.TokenResponse(
        access_token=reply.access_token,
        token_type="Bearer",  # noqa: S106  # the scheme, not a secret
        expires_in=max(0, round((expires - datetime.now(UTC)).total_seconds())),
        scope=" ".join(reply.scopes),
    )
    return JSONResponse(answer.model_dump(mode="json"), headers=_NO_STORE)
