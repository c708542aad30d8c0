"""Spans of a real ``arbiter serve`` reach a real OTLP/HTTP receiver (protobuf over HTTP, what an
OpenTelemetry Collector listens for on :4318): the Decide span and its four phases, in the
caller's trace, exported on shutdown at the latest."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from arbiter.v1 import decision_pb2, decision_pb2_grpc

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from server_procs import EXAMPLES, ServerProcess  # noqa: E402

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


class Receiver(ThreadingHTTPServer):
    """A minimal OTLP/HTTP trace receiver: keeps every span it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[tuple[str, str, str]] = []  # (name, trace id, parent span id)
        self.paths: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.paths.append(self.path)
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.server.spans.append(
                        (span.name, span.trace_id.hex(), span.parent_span_id.hex())
                    )
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_served_decide_is_exported_to_an_otlp_receiver(
    receiver: Receiver, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    server = ServerProcess(
        EXAMPLES, tmp_path, name="traced", extra_args=("--otlp-endpoint", endpoint)
    ).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            stub.Decide(
                decision_pb2.DecideRequest(
                    request_id=uuid.uuid4().hex,
                    customer_id="otlp-1",
                    placement="home_banner",
                    channels=["in_app"],
                ),
                metadata=(("traceparent", f"00-{TRACE_ID}-b7ad6b7169203331-01"),),
                timeout=5,
            )
    finally:
        assert server.stop() == 0  # shutdown exports what is batched
    names = sorted(name for name, trace, _ in receiver.spans if trace == TRACE_ID)
    assert names == ["arbiter.Decide", "commit", "decide", "load", "validate"], server.log_tail()
    assert set(receiver.paths) == {"/v1/traces"}
    root = next(s for s in receiver.spans if s[0] == "arbiter.Decide")
    assert root[2] == "b7ad6b7169203331"  # the caller's span is the parent
