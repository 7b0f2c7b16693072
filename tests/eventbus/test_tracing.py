"""One trace runs from the request that caused an event to the handler that consumed it."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from superapp.identity.v1 import events_pb2

from tests.eventbus.conftest import Bench, effects, until


async def test_publish_and_handler_spans_join_the_producing_request_trace(
    bench: Bench, tracer_provider: TracerProvider
) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    outbox, _ = bench.producer()
    bench.consumer()
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("RegisterUser", kind=SpanKind.SERVER) as request_span:
        async with bench.database.write() as session:
            await outbox.record(session, events_pb2.UserRegistered(user_id="u1"), "u1")
    names = {
        "superapp.identity.user.registered publish",
        "superapp.identity.user.registered process",
    }

    async def both_ended() -> bool:
        # The handler's span ends just after its commit, whenever the loop gets to it.
        return names <= {span.name for span in exporter.get_finished_spans()}

    await until(both_ended, 30, "the publish and handler spans")
    assert (await effects(bench.database))[0] == 1

    spans = {span.name: span for span in exporter.get_finished_spans()}
    publish = spans["superapp.identity.user.registered publish"]
    process = spans["superapp.identity.user.registered process"]
    trace_id = request_span.get_span_context().trace_id
    assert {publish.context.trace_id, process.context.trace_id} == {trace_id}
    assert publish.parent is not None
    assert process.parent is not None
    assert publish.parent.span_id == request_span.get_span_context().span_id
    assert process.parent.span_id == publish.context.span_id
    assert (publish.kind, process.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
