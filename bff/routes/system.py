"""Liveness, readiness (upstream health) and the token-verification keys."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from superapp.identity.v1 import identity_service_pb2 as pb

from bff import schemas
from bff.dependencies import SettingsDep, UpstreamsDep
from bff.openapi import errors

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/livez", response_model=schemas.Liveness, summary="Liveness")
async def livez() -> schemas.Liveness:
    """200 while the process serves HTTP."""
    return schemas.Liveness(status="ok")


@router.get("/readyz", response_model=schemas.Readiness, summary="Readiness")
async def readyz(upstreams: UpstreamsDep, settings: SettingsDep) -> JSONResponse:
    """200 while this process serves, with what each upstream reports on grpc.health.v1:
    `ready` when every one is SERVING, `degraded` when one is not.

    Deliberately not 503 for an upstream's outage: a load balancer would then take every
    BFF replica out at once and the app would get connection errors for every route,
    where the routes that need the missing service answer 503 problem+json and the
    others keep working.
    """
    report = await upstreams.health(settings.readiness_timeout_seconds)
    ready = all(status == "SERVING" for status in report.values())
    body = schemas.Readiness(status="ready" if ready else "degraded", upstreams=report)
    return JSONResponse(body.model_dump())


@router.get(
    "/.well-known/jwks.json",
    response_model=schemas.Jwks,
    responses=errors(),
    summary="Token verification keys",
)
async def jwks(upstreams: UpstreamsDep) -> JSONResponse:
    """identity's public keys (RFC 7517), as `GetJwks` returns them."""
    reply = await upstreams.identity.GetJwks(pb.GetJwksRequest())
    body = schemas.Jwks(
        keys=[
            schemas.Jwk(kty=k.kty, crv=k.crv, x=k.x, kid=k.kid, alg=k.alg, use=k.use)
            for k in reply.keys
        ]
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "public, max-age=300"})
