"""One error shape for the whole API (API.md, Conventions).

400: ``{"errors": {"field": ["message", ...]}}``; for a batch
``{"errors": [{"index": i, "field": ["message"]}, ...]}``. Other statuses keep
DRF's ``{"detail": "..."}``; errors that Django answers itself on an API path (an
unknown path, an uncaught exception, in DEBUG too) are ``{"detail": "..."}`` as
well (``json_not_found``, ``json_server_error`` and
``analytics.platform.middleware.ApiJsonErrorsMiddleware``).
"""

import logging
import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is not in a state that allows this."
    default_code = "conflict"


class BatchInvalid(exceptions.ValidationError):
    """A batch with bad items: ``problems`` is ``[{"index": i, "field": ["message"]}, ...]``."""

    def __init__(self, problems: list[dict]):
        super().__init__("Invalid batch.")
        self.problems = problems


def field_error(field: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [message]})


def _as_field_errors(detail):
    if isinstance(detail, dict):
        return {key: _as_messages(value) for key, value in detail.items()}
    return {"non_field_errors": _as_messages(detail)}


def _as_messages(value):
    if isinstance(value, list | tuple):
        if value and all(isinstance(item, str) for item in value):
            return [str(item) for item in value]
        if value and all(isinstance(item, dict) for item in value):
            return [_as_field_errors(item) for item in value]
        return [str(item) for item in value]
    if isinstance(value, dict):
        return _as_field_errors(value)
    return [str(value)]


logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE_DETAIL = "The database is unavailable; retry later."
# The server down, restarting or refusing connections, a dropped connection (and a deadlock or SQLite's "database
# is locked": worth one more try as well). IntegrityError, ProgrammingError, DataError stay 500s.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)


def is_database_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, DATABASE_UNAVAILABLE_ERRORS)


def database_unavailable_response(request, exc: BaseException) -> JsonResponse:
    """503 with ``Retry-After`` (API_RETRY_AFTER_SECONDS); one WARNING line naming the error's type only
    (its message may name the database's host or user)."""
    logger.warning("database unavailable: %s %s answered 503 (%s)", request.method, request.path,
                   type(exc).__name__)
    response = JsonResponse({"detail": DATABASE_UNAVAILABLE_DETAIL}, status=503)
    response["Retry-After"] = str(settings.API_RETRY_AFTER_SECONDS)
    return response


def api_exception_handler(exc, context):
    if is_database_unavailable(exc):
        return database_unavailable_response(context["request"], exc)
    if isinstance(exc, exceptions.ParseError):
        return Response({"errors": {"body": [str(exc.detail)]}}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, BatchInvalid):
        return Response({"errors": exc.problems}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"errors": _as_field_errors(exc.detail)}, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)


API_PREFIX = "/api/"
# The OTLP receiver (analytics/api/otlp.py): bodies limited as the API's, errors in OTLP's own encoding.
OTLP_PREFIX = "/otlp/"

NOT_FOUND_DETAIL = "Not found."
SERVER_ERROR_DETAIL = "Internal server error."


def api_error_detail(status_code: int, phrase: str) -> str:
    """The ``detail`` of an error answered outside DRF: the same words as the 404 and 500 handlers."""
    if status_code == 404:
        return NOT_FOUND_DETAIL
    if status_code == 500:
        return SERVER_ERROR_DETAIL
    return f"{phrase[:1].upper()}{phrase[1:].lower()}."


def json_not_found(request, exception=None):
    """Django's 404 handler: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": NOT_FOUND_DETAIL}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request):
    """Django's 500 handler: JSON under /api/ (never a traceback), the usual page elsewhere.

    An unreachable database raised outside a view (in a middleware) is a 503 here too.
    """
    if request.path.startswith((API_PREFIX, OTLP_PREFIX)) and is_database_unavailable(sys.exc_info()[1]):
        return database_unavailable_response(request, sys.exc_info()[1])
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": SERVER_ERROR_DETAIL}, status=500)
    from django.views.defaults import server_error

    return server_error(request)
