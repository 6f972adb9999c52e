"""One error shape for the whole API (API.md, Conventions).

400: ``{"errors": {"field": ["message", ...]}}``; for a batch
``{"errors": [{"index": i, "field": ["message"]}, ...]}``. Other statuses keep
DRF's ``{"detail": "..."}``.
"""

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


def api_exception_handler(exc, context):
    if isinstance(exc, exceptions.ParseError):
        return Response({"errors": {"body": [str(exc.detail)]}}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, BatchInvalid):
        return Response({"errors": exc.problems}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"errors": _as_field_errors(exc.detail)}, status=status.HTTP_400_BAD_REQUEST)
    return exception_handler(exc, context)


def json_not_found(request, exception=None):
    """Django's 404 handler: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    from django.views.defaults import server_error

    return server_error(request)
