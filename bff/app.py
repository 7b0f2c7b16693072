"""The FastAPI application: routes, error mapping, limits, compression, tracing, wiring.

Everything the routes need is built in the lifespan, inside the event loop that serves
(gRPC channels belong to one loop), and kept on `app.state`: the upstream stubs, the
token verifiers (users' and mini-apps') and the rate limits. The process's metrics are
there too (`app_metrics`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from starlette.middleware.gzip import GZipMiddleware

from bff.body_limit import BodySizeLimit
from bff.config import BffSettings
from bff.http_metrics import HttpMetrics, MeasureRequests
from bff.mini_app_metrics import MiniAppMetrics
from bff.miniapp_manifests import Manifests
from bff.openapi import OPENAPI_PATH, install_openapi
from bff.problems import install_problem_handlers
from bff.query_parameters import QueryParameters, refuse_unknown_query_parameters
from bff.rate_limits import RateLimits
from bff.routes import ROUTERS
from bff.routes.developer import BUNDLE_UPLOADS
from bff.service_identity import ServiceIdentity
from bff.upstreams import Upstreams
from services.auth.jwks import JwksCache, grpc_jwks_fetcher
from services.auth.verifier import TokenVerifier
from services.runtime.clock import Clock, SystemClock
from services.runtime.loop_lag import LoopLag
from services.runtime.metrics import Metrics
from services.runtime.tracing import exports_spans

__all__ = ["app_metrics", "create_app"]

_DESCRIPTION = """\
The mobile app's HTTP/JSON API over the superapp gRPC services.

Authenticate with `Authorization: Bearer <access token>` from `POST /v1/auth/login`.
Every write takes an `Idempotency-Key` header: a retry with the same key returns the
first result. Errors are RFC 9457 `application/problem+json` documents whose `reason`
is the stable, UPPER_SNAKE cause (the upstream service's `ErrorInfo.reason`).
"""


def create_app(
    settings: BffSettings,
    *,
    tracer_provider: TracerProvider | None = None,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
) -> FastAPI:
    """The BFF as an ASGI app; upstream channels open when its lifespan starts.

    With a `tracer_provider` that exports spans, requests and upstream calls are traced
    and the trace context travels upstream. `metrics` are the serving process's (its
    own, if not given; see `app_metrics`); `BffServer` serves them.
    """
    tracing = tracer_provider is not None and exports_spans(tracer_provider)
    clock = clock or SystemClock()
    metrics = metrics or Metrics("bff", enabled=settings.metrics_enabled)
    loop_lag = LoopLag(metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upstreams = Upstreams.connect(settings, tracer_provider if tracing else None)
        app.state.upstreams = upstreams
        jwks = JwksCache(grpc_jwks_fetcher(upstreams.identity_channel), clock=clock)
        app.state.verifier = TokenVerifier(
            jwks, issuer=settings.token_issuer, audience=settings.token_audience, clock=clock
        )
        # Mini-app tokens: the same keys, and identity's introspection as the BFF itself.
        app.state.service_identity = ServiceIdentity.of(
            settings, upstreams.identity_channel, jwks, clock
        )
        app.state.rate_limits = RateLimits(settings)
        await app.state.rate_limits.check_storage()
        loop_lag.start()
        try:
            yield
        finally:
            await upstreams.close()
            await loop_lag.stop()

    app = FastAPI(
        title="superapp BFF",
        version="1.0.0",
        description=_DESCRIPTION,
        lifespan=lifespan,
        openapi_url=OPENAPI_PATH,
        docs_url=None,  # the UIs load scripts from a CDN; the document is what matters
        redoc_url=None,
        dependencies=[Depends(refuse_unknown_query_parameters)],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.mini_app_metrics = MiniAppMetrics(
        metrics, client_labels=settings.mini_app_metric_labels
    )
    app.state.manifests = Manifests()
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.state.query_parameters = QueryParameters()
    app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_minimum_bytes)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, larger=[BUNDLE_UPLOADS])
    if metrics.enabled:
        # Added last, so outermost of ours: it counts the status the client gets.
        app.add_middleware(MeasureRequests, http_metrics=HttpMetrics(metrics))
    install_openapi(app)
    if tracing:
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=tracer_provider, excluded_urls="livez,readyz"
        )
    return app


def app_metrics(app: FastAPI) -> Metrics:
    """The metrics of the process serving `app` (made by `create_app`)."""
    metrics: Metrics = app.state.metrics
    return metrics
