"""The OTLP/HTTP receiver (docs/otlp.md): ``POST /otlp/v1/metrics`` and ``POST /otlp/v1/traces``.

Any OpenTelemetry SDK or Collector reports here with ``OTEL_EXPORTER_OTLP_ENDPOINT=<platform>/otlp`` and its
token in ``Authorization: Bearer <token>`` (or Basic, the token as the password). Bodies are protobuf
(``application/x-protobuf``) or OTLP's JSON (hex trace and span ids), optionally gzip-compressed. The answer
is OTLP's response message in the request's encoding, with ``partial_success`` when some points or spans were
refused; errors are a ``google.rpc.Status`` in that encoding, as the OTLP specification asks.
"""

from __future__ import annotations

import base64
import json
import logging
import zlib

from django.conf import settings
from django.db import OperationalError
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from rest_framework import exceptions, status
from rest_framework.views import APIView

from analytics.platform import ingest_counts
from analytics.platform.auth import BasicTokenAuthentication, BearerTokenAuthentication
from analytics.platform.conventions import OrgScopeMixin
from analytics.platform.permissions import ApiAccess
from analytics.services.otlp_common import IntakeResult
from analytics.services.otlp_metrics import ingest_metrics
from analytics.services.otlp_traces import ingest_traces

logger = logging.getLogger(__name__)

PROTOBUF, JSON = "application/x-protobuf", "application/json"
# A gzip body may inflate far past the limit on what is sent: read at most this much of it.
MAX_DECOMPRESSED_FACTOR = 8
RETRY_AFTER_SECONDS = 5
# OTLP/JSON writes these ids as hex; protobuf's JSON mapping expects base64 for bytes.
_HEX_ID_FIELDS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
# gRPC status codes of google.rpc.Status, by HTTP status (OTLP/HTTP answers errors with one).
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 503: 14}


class Overloaded(exceptions.APIException):
    """The database is busy (locked, or refusing connections): the SDK retries after ``Retry-After``."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The platform is busy; retry later."


def _inflate(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise exceptions.ParseError("The body is not valid gzip.") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise exceptions.ValidationError({"body": [f"The decompressed body is larger than {limit} bytes."]})
    return data


def _hex_ids_to_base64(value):
    if isinstance(value, dict):
        return {key: (base64.b64encode(bytes.fromhex(item)).decode("ascii")
                      if key in _HEX_ID_FIELDS and isinstance(item, str) else _hex_ids_to_base64(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_hex_ids_to_base64(item) for item in value]
    return value


def media_type_of(request) -> str:
    """The body's media type, which is also the answer's (errors included)."""
    content_type = (request.content_type or "").lower()
    if content_type not in (PROTOBUF, JSON):
        raise exceptions.UnsupportedMediaType(content_type or "(none)", detail=f"Send {PROTOBUF} or {JSON}.")
    return content_type


def decode(request, message: Message, media_type: str) -> None:
    """Fill ``message`` from the request body (gzip inflated)."""
    body = request.body
    encoding = request.headers.get("Content-Encoding", "identity").lower()
    if encoding == "gzip":
        body = _inflate(body, settings.API_MAX_BODY_BYTES * MAX_DECOMPRESSED_FACTOR)
    elif encoding != "identity":
        raise exceptions.UnsupportedMediaType(encoding, detail="Content-Encoding must be gzip or identity.")
    try:
        if media_type == PROTOBUF:
            message.ParseFromString(body)
        else:
            json_format.ParseDict(_hex_ids_to_base64(json.loads(body)), message, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, RecursionError) as error:
        raise exceptions.ParseError(f"Undecodable OTLP body: {str(error)[:200]}") from None


def encoded(message: Message, media_type: str, http_status: int = 200) -> HttpResponse:
    if media_type == JSON:
        body = json_format.MessageToJson(message, indent=None).encode()
    else:
        body = message.SerializeToString()
    return HttpResponse(body, status=http_status, content_type=media_type)


@extend_schema(exclude=True)  # protobuf, not the JSON API: documented in docs/otlp.md
class OtlpReceiver(OrgScopeMixin, APIView):
    authentication_classes = [BearerTokenAuthentication, BasicTokenAuthentication]
    permission_classes = [ApiAccess]
    request_class: type[Message]
    response_class: type[Message]

    def ingest(self, org, message) -> IntakeResult:
        raise NotImplementedError

    def partial_success(self, result: IntakeResult) -> Message:
        raise NotImplementedError

    def post(self, request):
        org = self.write_org()
        media_type = media_type_of(request)
        message = self.request_class()
        decode(request, message, media_type)
        result = self.ingest(org, message)
        ingest_counts.count_received(request.resolver_match.url_name, result.accepted)
        ingest_counts.count_rejected(request.resolver_match.url_name, result.rejected)
        answer = self.response_class()
        if result.rejected:
            answer.partial_success.CopyFrom(self.partial_success(result))
        return encoded(answer, media_type)

    def handle_exception(self, exc):
        """Errors as a ``google.rpc.Status`` in the request's encoding (OTLP/HTTP), with their headers.

        A busy database (locked, refusing connections, a lock timeout) anywhere in the request — the token's
        lookup included — is a 503 the SDKs retry after ``Retry-After``, not a lost export.
        """
        if isinstance(exc, OperationalError):
            logger.warning("otlp %s: database busy: %s", type(self).__name__, exc)
            exc = Overloaded()
        response = super().handle_exception(exc)
        content_type = (self.request.content_type or "").lower()
        media_type = content_type if content_type in (PROTOBUF, JSON) else PROTOBUF
        detail = getattr(exc, "detail", None) or str(exc)
        if isinstance(detail, dict):
            detail = "; ".join(f"{field}: {' '.join(map(str, messages))}" for field, messages in detail.items())
        answer = encoded(status_pb2.Status(code=_GRPC_CODES.get(response.status_code, 2), message=str(detail)),
                         media_type, response.status_code)
        for header in ("WWW-Authenticate", "Retry-After"):
            if header in response:
                answer[header] = response[header]
        if response.status_code in (429, 503):
            answer["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer


class OtlpMetricsView(OtlpReceiver):
    request_class = metrics_service_pb2.ExportMetricsServiceRequest
    response_class = metrics_service_pb2.ExportMetricsServiceResponse

    def ingest(self, org, message) -> IntakeResult:
        return ingest_metrics(org, message)

    def partial_success(self, result: IntakeResult) -> Message:
        return metrics_service_pb2.ExportMetricsPartialSuccess(
            rejected_data_points=result.rejected, error_message=result.reason)


class OtlpTracesView(OtlpReceiver):
    request_class = trace_service_pb2.ExportTraceServiceRequest
    response_class = trace_service_pb2.ExportTraceServiceResponse

    def ingest(self, org, message) -> IntakeResult:
        return ingest_traces(org, message)

    def partial_success(self, result: IntakeResult) -> Message:
        return trace_service_pb2.ExportTracePartialSuccess(rejected_spans=result.rejected,
                                                           error_message=result.reason)
