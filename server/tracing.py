"""OpenTelemetry spans of Decide (validate, load, decide, commit) when an OTLP endpoint is set.

``--otlp-endpoint URL`` (``ARBITER_OTLP_ENDPOINT``; e.g.
``http://otel-collector:4318``) turns tracing on: each Decide is one span
``arbiter.Decide`` -- a child of the caller's span when the call carries a
W3C ``traceparent`` -- with four children, ``validate`` (parse and check
the request), ``load`` (the store read), ``decide`` (the engine) and
``commit`` (the store write, absent for dry runs and unreadable state).
Spans go to ``<URL>/v1/traces`` as OTLP protobuf over HTTP, batched by the
SDK's ``BatchSpanProcessor`` in its own thread.

Attributes say what happened, never about whom: the policy version, the
placement, the number of actions granted, replayed / dry run / degraded,
the decision id (to find the record in the decision log), never the
customer id, context or state.

Off (no endpoint), nothing of OpenTelemetry is imported and
:data:`NO_SPANS` stands in: one attribute test per call and a shared no-op
context manager per phase (measured in ``docs/observability.md``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = [
    "NO_DECIDE",
    "NO_SPANS",
    "DecideSpans",
    "Spans",
    "tracing_from_endpoint",
    "tracing_from_exporter",
]

_log = logging.getLogger("arbiter.server")

SERVICE_NAME: Final = "arbiter"
PHASES: Final = ("validate", "load", "decide", "commit")


class Spans:
    """Tracing off: every span is the same no-op (see the module docstring)."""

    enabled = False

    def decide(self, call: Any) -> DecideSpans:
        """The spans of one Decide; ``call`` is its CallContext (for a ``traceparent``)."""
        return NO_DECIDE


class DecideSpans:
    """The spans of one Decide (off: all no-ops)."""

    def phase(self, name: str) -> contextlib.AbstractContextManager[Any]:
        return _NULL

    def attributes(self, values: Mapping[str, Any]) -> None:
        return None

    def __enter__(self) -> DecideSpans:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_NULL: Final = contextlib.nullcontext()
NO_DECIDE: Final = DecideSpans()
NO_SPANS: Final = Spans()


class _OtelDecide(DecideSpans):
    def __init__(self, tracer: Any, parent: Any) -> None:
        self._tracer = tracer
        self._parent_context = parent
        self._span: Any = None
        self._scope: Any = None

    def __enter__(self) -> DecideSpans:
        self._scope = self._tracer.start_as_current_span(
            "arbiter.Decide",
            context=self._parent_context,
            kind=_server_kind(),
            attributes={"rpc.system": "grpc", "rpc.method": "Decide"},
            record_exception=True,
            set_status_on_exception=True,
        )
        self._span = self._scope.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._scope.__exit__(*exc)

    def phase(self, name: str) -> contextlib.AbstractContextManager[Any]:
        return self._tracer.start_as_current_span(name)  # type: ignore[no-any-return]

    def attributes(self, values: Mapping[str, Any]) -> None:
        self._span.set_attributes(dict(values))


class _OtelSpans(Spans):
    enabled = True

    def __init__(self, tracer: Any, propagator: Any) -> None:
        self._tracer = tracer
        self._propagator = propagator

    def decide(self, call: Any) -> DecideSpans:
        parent = None
        metadata: Sequence[tuple[str, str]] | None = call.invocation_metadata()
        if metadata:
            carrier = {k: v for k, v in metadata if k in ("traceparent", "tracestate")}
            if carrier:
                parent = self._propagator.extract(carrier)
        return _OtelDecide(self._tracer, parent)


def _server_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.SERVER


def tracing_from_exporter(exporter: Any, *, batch: bool = True) -> tuple[Spans, Any]:
    """Spans exported to ``exporter`` (an OpenTelemetry ``SpanExporter``); returns the spans and
    the ``TracerProvider`` (``shutdown()`` flushes). ``batch=False`` exports each span as it
    ends (tests)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("arbiter.server")
    return _OtelSpans(tracer, TraceContextTextMapPropagator()), provider


def tracing_from_endpoint(endpoint: str) -> tuple[Spans, Any]:
    """Spans for ``--otlp-endpoint`` (``NO_SPANS`` and ``None`` when empty). ``ImportError``
    names the missing package when the ``tracing`` extra is not installed."""
    if not endpoint:
        return NO_SPANS, None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ImportError(
            "--otlp-endpoint needs opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http "
            "(pip install 'arbiter-decisions[tracing]')"
        ) from exc
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    spans, provider = tracing_from_exporter(OTLPSpanExporter(endpoint=url))
    _log.info("tracing: OpenTelemetry spans of Decide to %s", url)
    return spans, provider
