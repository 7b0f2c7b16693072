"""One trace from the HTTP request through the gRPC calls and NATS to the consumers."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.runtime.ids import new_id
from tests.bff.conftest import Platform, serving_bff
from tests.conftest import http_client
from tests.identity.conftest import PASSWORD

_AWAITED = {"superapp.identity.user.registered process", "superapp.wallet.wallet.opened publish"}


def _ended_in_the_requests_trace(exporter: InMemorySpanExporter, names: set[str]) -> bool:
    """Whether spans of each of `names` have ended in the trace of the POST request."""
    spans = exporter.get_finished_spans()
    posts = [s for s in spans if s.kind is SpanKind.SERVER and s.name.startswith("POST")]
    if not posts:
        return False
    trace_id = posts[0].context.trace_id
    return names <= {s.name for s in spans if s.context.trace_id == trace_id}


async def test_sign_up_is_one_trace_from_http_to_the_wallet_consumer(platform: Platform) -> None:
    exporter = InMemorySpanExporter()
    platform.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with (
        serving_bff(platform.bff(), tracer_provider=platform.tracer_provider) as url,
        http_client(url) as http,
    ):
        reply = await http.post(
            "/v1/auth/register",
            json={"email": f"t-{new_id()}@example.com", "password": PASSWORD, "display_name": "T"},
            headers={"Idempotency-Key": new_id()},
        )
        assert reply.status_code == 201
        user_id = reply.json()["user_id"]
        # The wallet opens asynchronously, from the event; its handler's span ends just
        # after its commit, which may be after the wallet's relay has published.
        for _ in range(600):
            if _ended_in_the_requests_trace(exporter, _AWAITED):
                break
            await asyncio.sleep(0.05)

    spans = exporter.get_finished_spans()
    [http_span] = [s for s in spans if s.kind is SpanKind.SERVER and s.name.startswith("POST")]
    trace_id = http_span.context.trace_id
    in_trace = {s.name: s for s in spans if s.context.trace_id == trace_id}
    client_call = in_trace["/superapp.identity.v1.IdentityService/RegisterUser"]
    assert client_call.kind is SpanKind.CLIENT
    server_calls = [
        s
        for s in spans
        if s.context.trace_id == trace_id
        and s.kind is SpanKind.SERVER
        and s.name == "/superapp.identity.v1.IdentityService/RegisterUser"
    ]
    assert len(server_calls) == 1
    assert server_calls[0].parent is not None
    assert server_calls[0].parent.span_id == client_call.context.span_id
    publish = in_trace["superapp.identity.user.registered publish"]
    consume = [
        s
        for s in spans
        if s.context.trace_id == trace_id and s.name == "superapp.identity.user.registered process"
    ]
    assert consume, "the wallet's consumer span is not in the request's trace"
    assert all(s.kind is SpanKind.CONSUMER for s in consume)
    assert any(
        s.parent is not None and s.parent.span_id == publish.context.span_id for s in consume
    )
    assert "superapp.wallet.wallet.opened publish" in in_trace
    assert user_id
