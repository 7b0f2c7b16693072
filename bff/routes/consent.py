"""The shell's side of a mini-app's single sign-on: the user's consent (which returns
the one-time authorization code the shell hands to the mini-app's redirect URI), and the
user's grants, listed and revoked. identity decides everything; these are its
AuthorizeMiniApp, ListMyGrants and RevokeGrant over HTTP.

Consent takes no Idempotency-Key: identity keeps a code only hashed, so a retry could not
be answered with the first code anyway; a retried consent makes a new code and the
unused one expires on its own (60 s).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from superapp.identity.v1 import identity_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.dependencies import WRITE_LIMITS, PageSize, PageToken, UpstreamsDep, next_token
from bff.openapi import errors
from bff.schemas import Uuid

__all__ = ["router"]

router = APIRouter(prefix="/v1/me", tags=["mini-app consent"])


@router.post(
    "/mini-app-consents",
    status_code=201,
    response_model=schemas.Consent,
    responses=errors(401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Consent to a mini-app's scopes",
)
async def consent(
    body: schemas.ConsentRequest, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.Consent:
    """The signed-in user grants a mini-app all or some of the scopes its published
    manifest requests; the answer's one-time `code` goes to the mini-app's redirect URI
    with `state`, and its backend exchanges it at `POST /oauth2/token`. 400
    `INVALID_REDIRECT_URI` / `INVALID_SCOPE`, 404 `CLIENT_NOT_FOUND`, 400
    `CLIENT_SUSPENDED`."""
    reply = await upstreams.identity.AuthorizeMiniApp(
        pb.AuthorizeMiniAppRequest(
            client_id=body.client_id,
            redirect_uri=body.redirect_uri,
            requested_scopes=body.requested_scopes,
            granted_scopes=body.granted_scopes,
            code_challenge=body.code_challenge,
            code_challenge_method=body.code_challenge_method,
            state=body.state,
        ),
        metadata=principal.metadata,
    )
    return conversions.consent(reply)


@router.get(
    "/mini-app-grants",
    response_model=schemas.GrantPage,
    responses=errors(401),
    summary="My grants to mini-apps",
)
async def list_grants(
    principal: SignedIn,
    upstreams: UpstreamsDep,
    page_size: PageSize = 50,
    page_token: PageToken = None,
) -> schemas.GrantPage:
    """The signed-in user's active grants, newest first (revoked ones are gone)."""
    reply = await upstreams.identity.ListMyGrants(
        pb.ListMyGrantsRequest(page_size=page_size, page_token=page_token or ""),
        metadata=principal.metadata,
    )
    return schemas.GrantPage(
        grants=[conversions.grant(g) for g in reply.grants],
        next_page_token=next_token(reply.next_page_token),
    )


@router.delete(
    "/mini-app-grants/{grant_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 404, 429),
    dependencies=WRITE_LIMITS,
    summary="Revoke a grant",
)
async def revoke_grant(
    grant_id: Annotated[Uuid, Path(description="One of the caller's grants.")],
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> Response:
    """Every token and unused code of the grant stop working at once at identity, and
    within the introspection cache (2 s by default) at every resource server. Revoking a
    revoked grant succeeds; another user's grant is 404 `GRANT_NOT_FOUND`."""
    await upstreams.identity.RevokeGrant(
        pb.RevokeGrantRequest(grant_id=grant_id), metadata=principal.metadata
    )
    return Response(status_code=204)
