"""A small OTLP/HTTP metrics receiver on a loopback port, decoding what it is sent with opentelemetry-proto."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)


@dataclass
class ReceivedPoint:
    metric: str
    kind: str  # sum | gauge | histogram
    attributes: dict
    value: float | None  # sum and gauge
    count: int | None = None  # histogram
    total: float | None = None  # histogram
    bucket_bounds: tuple = ()


@dataclass
class OtlpReceiver:
    server: ThreadingHTTPServer
    path: str = "/v1/metrics"
    status: int = 200
    requests: list[dict] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def points(self) -> list[ReceivedPoint]:
        found = []
        for request in self.requests:
            for resource_metrics in request["body"].resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        kind = metric.WhichOneof("data")
                        for point in getattr(metric, kind).data_points:
                            attributes = {kv.key: kv.value.string_value for kv in point.attributes}
                            if kind == "histogram":
                                found.append(ReceivedPoint(metric.name, kind, attributes, None, point.count,
                                                           point.sum, tuple(point.explicit_bounds)))
                            else:
                                value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
                                found.append(ReceivedPoint(metric.name, kind, attributes, value))
        return found

    def latest(self, metric: str, **attributes) -> ReceivedPoint | None:
        matching = [point for point in self.points() if point.metric == metric
                    and all(point.attributes.get(key) == value for key, value in attributes.items())]
        return matching[-1] if matching else None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_otlp_receiver(status: int = 200) -> OtlpReceiver:
    receiver: OtlpReceiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = ExportMetricsServiceRequest()
            request.ParseFromString(body)
            receiver.requests.append({"path": self.path, "body": request,
                                      "headers": {key.lower(): value for key, value in self.headers.items()}})
            payload = ExportMetricsServiceResponse().SerializeToString() if receiver.status == 200 else b""
            self.send_response(receiver.status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = OtlpReceiver(server=server, status=status)
    threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True).start()
    return receiver
