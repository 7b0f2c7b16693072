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


@router.get(
    "/readyz",
    response_model=schemas.Readiness,
    responses={503: {"model": schemas.Readiness, "description": "An upstream is not serving."}},
    summary="Readiness",
)
async def readyz(upstreams: UpstreamsDep, settings: SettingsDep) -> JSONResponse:
    """200 when identity, wallet and catalogue all report SERVING on grpc.health.v1."""
    report = await upstreams.health(settings.readiness_timeout_seconds)
    ready = all(status == "SERVING" for status in report.values())
    body = schemas.Readiness(status="ready" if ready else "not_ready", upstreams=report)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


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
