"""The API's middleware: JSON errors on API paths in every mode, 503 while the database is unreachable, and the
body size limit."""

from http import HTTPStatus

from django.conf import settings
from django.http import JsonResponse
from rest_framework.response import Response

from analytics.platform.errors import (
    API_PREFIX,
    OTLP_PREFIX,
    api_error_detail,
    database_unavailable_response,
    is_database_unavailable,
)

# Headers of the replaced page that still hold for the JSON answer (a 405's Allow, a 401's challenge).
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", "Vary")


def _is_json(response) -> bool:
    content_type = response.get("Content-Type", "")
    return content_type.split(";", 1)[0].strip().lower() in {"application/json", "application/problem+json"}


class ApiJsonErrorsMiddleware:
    """An error answered by Django itself on an API path becomes JSON, whatever DEBUG says.

    With DEBUG on, Django answers an unknown path (or ``rules/abc`` where ``<int:pk>`` is expected) with its
    debug page listing every URL pattern, and an uncaught exception with a traceback page; with DEBUG off,
    its 400 and 403 pages are HTML. On ``/api/`` paths each becomes JSON with the same status: 404 as
    ``json_not_found``, 500 as ``json_server_error`` (no traceback: Django has logged and signalled the
    exception before this runs), 400 as ``{"errors": {"request": ["Bad request."]}}``, any other status as
    ``{"detail": "..."}``. Answers of DRF views are left alone: they are already the API's (JSON, or the
    browsable API's HTML when a browser asks for it).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith(API_PREFIX)
            and not isinstance(response, Response)
            and not _is_json(response)
        ):
            return self._as_json(response)
        return response

    @staticmethod
    def _as_json(response):
        try:
            phrase = HTTPStatus(response.status_code).phrase
        except ValueError:
            phrase = "Error"
        detail = api_error_detail(response.status_code, phrase)
        # A 400 keeps the API's 400 shape (API.md, Errors); every other status DRF's {"detail": ...}.
        body = {"errors": {"request": [detail]}} if response.status_code == 400 else {"detail": detail}
        answer = JsonResponse(body, status=response.status_code)
        for header in _KEPT_HEADERS:
            if header in response:
                answer[header] = response[header]
        return answer


class DatabaseUnavailableMiddleware:
    """A view (an API view's authentication included) that cannot reach the database answers 503 with
    ``Retry-After: API_RETRY_AFTER_SECONDS`` on API and OTLP paths, instead of a 500: the request may be sent
    again as it was, and the clients (analytics.client.http, OTLP exporters) do. Django's ``OperationalError``
    and ``InterfaceError`` cover a server that is down or restarting, a dropped connection, a deadlock and
    SQLite's "database is locked" — all worth one more try. Nothing was stored: each write is one transaction.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.path.startswith((API_PREFIX, OTLP_PREFIX)) and is_database_unavailable(exception):
            return database_unavailable_response(request, exception)
        return None


class ApiBodySizeLimitMiddleware:
    """Refuse API (and OTLP) bodies over API_MAX_BODY_BYTES with 413 before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith((API_PREFIX, OTLP_PREFIX)):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return JsonResponse({"errors": {"body": ["Invalid Content-Length header."]}}, status=400)
            limit = settings.API_MAX_BODY_BYTES
            if length > limit:
                return JsonResponse(
                    {"errors": {"body": [f"Request body is {length} bytes; the limit is {limit}."]}}, status=413
                )
        return self.get_response(request)

