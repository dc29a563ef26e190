"""An OTLP/HTTP traces receiver for the test suite.

Decodes each POST /v1/traces body as an ExportTraceServiceRequest with the
OpenTelemetry project's own protobuf bindings (PyPI `opentelemetry-proto`,
generated from the official opentelemetry-proto definitions) and Google's
protobuf runtime, as an OpenTelemetry Collector's OTLP receiver does; a body
that does not decode, or a span whose ids have the wrong length, is answered
400 like the collector would. Decoded spans are served as JSON at GET /spans.

Usage: python3 otlp-receiver.py   (prints "listening <port>" once ready)
"""

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

LOCK = threading.Lock()
SPANS = []
EXPORTS = []
MODE = {"status": 200}


def any_value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with LOCK:
            if self.path == "/spans":
                body = json.dumps(SPANS).encode()
            elif self.path == "/exports":
                body = json.dumps(EXPORTS).encode()
            else:
                return self.reply(404, b"{}", "application/json")
        self.reply(200, body, "application/json")

    def do_PUT(self):
        # Test control: PUT /mode?status=503 makes exports fail; /reset forgets what was received.
        if self.path.startswith("/mode?status="):
            MODE["status"] = int(self.path.split("=", 1)[1])
        elif self.path == "/reset":
            with LOCK:
                SPANS.clear()
                EXPORTS.clear()
        self.reply(204, b"", "text/plain")

    def read_body(self):
        # The JavaScript exporter streams its body (Transfer-Encoding: chunked), as Go's net/http in the Collector accepts.
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def do_POST(self):
        raw = self.read_body()
        if self.path != "/v1/traces":
            return self.reply(404, b"", "text/plain")
        if MODE["status"] != 200:
            return self.reply(MODE["status"], b"", "text/plain")
        if (self.headers.get("content-type") or "").split(";")[0].strip() != "application/x-protobuf":
            return self.reply(415, b"", "text/plain")
        if (self.headers.get("content-encoding") or "").lower() == "gzip":
            raw = gzip.decompress(raw)
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(raw)
        except DecodeError as err:
            return self.reply(400, str(err).encode(), "text/plain")
        decoded = []
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    if len(s.trace_id) != 16 or len(s.span_id) != 8 or len(s.parent_span_id) not in (0, 8):
                        return self.reply(400, b"invalid trace or span id", "text/plain")
                    decoded.append(
                        {
                            "traceId": s.trace_id.hex(),
                            "spanId": s.span_id.hex(),
                            "parentSpanId": s.parent_span_id.hex(),
                            "traceState": s.trace_state,
                            "name": s.name,
                            "kind": s.kind,
                            "startTimeUnixNano": s.start_time_unix_nano,
                            "endTimeUnixNano": s.end_time_unix_nano,
                            "attributes": attributes(s.attributes),
                            "status": {"code": s.status.code, "message": s.status.message},
                            "resource": resource,
                            "scope": ss.scope.name,
                        }
                    )
        with LOCK:
            SPANS.extend(decoded)
            EXPORTS.append({"spans": len(decoded), "headers": {k.lower(): v for k, v in self.headers.items()}})
        self.reply(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
