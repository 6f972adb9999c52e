"""Request and response contracts, declared once (API.md, Conventions; DESIGN.md, "Contracts declared once").

Every endpoint states its input as a pydantic model — query parameters (``Query``), a JSON body, or the
items of a batch — and its output as a pydantic model that the service returns. The same classes validate
the request, render the response and, through drf-spectacular, write the OpenAPI schema, so the three
cannot drift apart::

    class MetricIngestView(ApiView):
        @endpoint(items=MetricItem, response=IngestResult, status=201, summary="Record metric events")
        def post(self, request, org, items):
            return ingest_metric_items(org, items)

Pydantic's errors are translated into API.md's shape, each message naming its field (and, in a batch, the
item's index): ``{"errors": {"field": ["message"]}}`` or ``{"errors": [{"index": i, "field": [...]}]}``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError, core_schema, from_json
from rest_framework import exceptions, status
from rest_framework.response import Response

from analytics.platform import ingest_counts
from analytics.platform.errors import BatchInvalid
from analytics.platform.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from analytics.platform.tenancy import SLUG_PATTERN
from analytics.platform.windows import MAX_WINDOW, MIN_ROLLING, Window, WindowError, parse_time

MAX_FUTURE = timedelta(minutes=5)
# Printable, for API.md's "printable" fields: no control characters (C0, DEL, C1), which is also what
# the schema's `pattern` says, so generated clients and the server agree on every character.
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"
# A name: printable, not blank, no leading or trailing whitespace.
NAME = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
# A tag filter, key:value: printable like the tags it filters (PostgreSQL cannot compare text holding NUL).
TAG_FILTER = r"^[^:\x00-\x1f\x7f-\x9f]+:[^\x00-\x1f\x7f-\x9f]*$"
PATTERN_MESSAGES = {
    PRINTABLE: "Must contain printable characters only.",
    TAG_FILTER: "Must be key:value, printable characters only.",
    NAME: "Must be printable, not blank, without leading or trailing spaces.",
}
NONE_OR_EMPTY = (None, "")
# Where an answer came from (API.md, Percentiles): exact from raw events, or merged from rollups' sketches.
Source = Literal["raw", "rollup"]


# --- Bases -------------------------------------------------------------------------------


class RequestContract(BaseModel):
    """A request body or batch item. Unknown fields are ignored (API.md, Errors)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class ResponseContract(BaseModel):
    """A response body: what a service returns and a view renders."""

    model_config = ConfigDict(from_attributes=True, ser_json_inf_nan="null")

    def render(self) -> dict:
        return _tidy(self.model_dump(mode="json", by_alias=True))

    def __getitem__(self, field: str):
        """``summary["skill_id"]``: a response reads like the JSON object it renders to."""
        try:
            return getattr(self, field)
        except AttributeError:
            raise KeyError(field) from None


def _tidy(value):
    """Floats below 10^12 written with 12 significant digits, so the binary noise of arithmetic is not
    printed (``78.53999999999999`` is ``78.54``); no measurement here is more precise than that. Larger
    values (sums of counters) are written whole, so their integer part stays exact."""
    if isinstance(value, float):
        return float(f"{value:.12g}") if abs(value) < 1e12 else value
    if isinstance(value, dict):
        return {key: _tidy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tidy(item) for item in value]
    return value


class InvalidParameter(Exception):  # noqa: N818  (not a ValueError: pydantic lets it through, field intact)
    """Raised by a Query's model validator for a rule across parameters; names the parameter to blame."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class Query(RequestContract):
    """Query parameters. A ``list[...]`` field reads a repeatable parameter.

    A parameter given empty (``?org=``) is given: it is checked like any other value, as the schema says.
    """

    @classmethod
    def from_request(cls, request, **context) -> Any:
        params = request.query_params
        data: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if _is_list(field.annotation):
                if key in params:
                    data[key] = params.getlist(key)
            elif key in params:
                data[key] = params[key]
        try:
            return cls.model_validate(data, context=context or None)
        except ValidationError as error:
            raise exceptions.ValidationError(field_messages(error)) from None
        except InvalidParameter as error:
            raise exceptions.ValidationError({error.field: [error.message]}) from None

    @classmethod
    def openapi_parameters(cls) -> list[OpenApiParameter]:
        schema = cls.model_json_schema(mode="validation")
        definitions = schema.get("$defs", {})
        required = set(schema.get("required", []))
        parameters = []
        for name, prop in schema.get("properties", {}).items():
            prop = _inline(_without_null(prop), definitions)
            description = prop.pop("description", "")
            prop.pop("title", None)
            parameters.append(OpenApiParameter(
                name, type=prop, location=OpenApiParameter.QUERY, required=name in required,
                description=description, explode=True if prop.get("type") == "array" else None,
            ))
        return parameters


def _is_list(annotation) -> bool:
    if get_origin(annotation) in (list, tuple):
        return True
    return any(_is_list(arg) for arg in get_args(annotation) if arg is not type(None))


def _without_null(prop: dict) -> dict:
    """``X | None`` is pydantic's ``anyOf [X, null]``; an absent query parameter is already "none"."""
    options = prop.get("anyOf")
    if options:
        kept = [option for option in options if option.get("type") != "null"]
        if len(kept) == 1:
            return {**{k: v for k, v in prop.items() if k not in ("anyOf", "default")}, **kept[0]}
    return dict(prop)


def _inline(prop: dict, definitions: dict) -> dict:
    ref = prop.pop("$ref", None)
    if ref:
        prop = {**definitions[ref.rsplit("/", 1)[-1]], **prop}
        prop.pop("title", None)
    if "items" in prop:
        prop["items"] = _inline(dict(prop["items"]), definitions)
    return prop


# --- Field types of the API conventions -----------------------------------------------------


def Printable(max_length: int, *, description: str = "") -> Any:  # noqa: N802  (names a kind of value)
    """``Annotated[str, Printable(n)]``: printable characters, at most ``n`` of them (may be empty)."""
    return Field(max_length=max_length, pattern=PRINTABLE, description=description or None)


def Name(max_length: int, *, description: str = "", pattern: str = NAME) -> Any:  # noqa: N802
    """``Annotated[str, Name(n)]``: a required name, 1 to ``n`` printable characters, no surrounding whitespace."""
    return Field(min_length=1, max_length=max_length, pattern=pattern, description=description or None)


def _event_id(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # clients often use sequence numbers
    return value


# Printable like every other text of an event (PostgreSQL cannot store NUL in text).
EventId = Annotated[str, BeforeValidator(_event_id), Field(
    min_length=1, max_length=128, pattern=PRINTABLE, json_schema_extra={"pattern": PRINTABLE},  # pydantic omits it
    description="The client's id of the event (printable): a repeated id is stored once.")]


def _timestamp(value):
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp_type", "Must be an ISO-8601 date-time string.")
    try:
        return parse_time("timestamp", value)
    except WindowError as error:
        raise PydanticCustomError("timestamp_parsing", error.message) from None


def ingest_context(now: datetime | None = None, **context) -> dict:
    """The validation context of ingest: ``now`` and the accepted time range, computed once per batch
    rather than once per event (reading settings costs more than the comparison)."""
    now = now or timezone.now()
    days = settings.ANALYTICS_DB_RETENTION_DAYS
    return {"now": now, "newest": now + MAX_FUTURE, "oldest": now - timedelta(days=days), "retention_days": days,
            **context}


def _within_accepted_range(value: datetime, info: ValidationInfo) -> datetime:
    """On ingest (a context from ``ingest_context``): no more than 5 minutes ahead, no older than retention."""
    context = info.context
    if not context or "newest" not in context:
        return value
    if value > context["newest"]:
        raise PydanticCustomError("future_time", "Is more than 5 minutes in the future.")
    if value < context["oldest"]:
        raise PydanticCustomError("too_old", f"Is older than the retention period ({context['retention_days']} days).")
    return value


EventTime = Annotated[datetime, BeforeValidator(_timestamp), AfterValidator(_within_accepted_range), Field(
    description="When it happened (ISO-8601; naive = UTC; default now). At most 5 minutes ahead, "
                "no older than the retention period.")]

# The largest magnitude a measured value may have: sums of up to 10^8 of them stay finite (a float
# overflows past 1.8e308), so statistics over any window are numbers, never infinities.
MAX_MAGNITUDE = 1e300
# allow_inf_nan=False: NaN and Infinity (which Python's JSON reader accepts) get "Must be a finite number.",
# not a misleading bound (NaN fails every comparison).
Measurement = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE,
                                     description="A finite number, at most 1e300 in magnitude.")]
Duration = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_MAGNITUDE, description=(
    "At least 0, at most 1e300."))]

MAX_TAGS = 20
TagKey = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]
TagValue = Annotated[str, Field(max_length=256, pattern=PRINTABLE)]
# Written by hand: pydantic states a key pattern as `patternProperties`, which leaves the values of keys
# outside the pattern unconstrained; `propertyNames` + `additionalProperties` constrain every key and value.
Tags = Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS), WithJsonSchema({
    "type": "object", "maxProperties": MAX_TAGS,
    "propertyNames": {"minLength": 1, "maxLength": 64, "pattern": PRINTABLE},
    "additionalProperties": {"type": "string", "maxLength": 256, "pattern": PRINTABLE},
    "description": f"Up to {MAX_TAGS} tags: key (1-64 printable characters) → value (≤ 256).",
})]


@dataclass(frozen=True)
class Bounded:
    """``Annotated[int, Bounded(low, high)]``: an integer from ``low`` to ``high``, one message for every miss.

    In a JSON body an integer is what JSON Schema calls one: ``5`` and ``5.0``, not ``"5"``, ``4.5`` or
    ``true``. Query parameters, which are text, pass ``from_text=True``.
    """

    low: int
    high: int
    description: str = ""
    from_text: bool = False

    def __get_pydantic_core_schema__(self, source, handler) -> core_schema.CoreSchema:
        message = f"Must be an integer from {self.low} to {self.high}."

        def check(value, validate):
            if not self.from_text and isinstance(value, float) and value.is_integer():
                value = int(value)
            try:
                return validate(value)
            except ValidationError:
                raise PydanticCustomError("int_range", message) from None

        inner = core_schema.int_schema(ge=self.low, le=self.high, strict=not self.from_text)
        return core_schema.no_info_wrap_validator_function(check, inner)

    def __get_pydantic_json_schema__(self, schema, handler) -> dict:
        json_schema = handler(schema)
        if self.description:
            json_schema["description"] = self.description
        return json_schema


def org_matches(value: str | None, info: ValidationInfo) -> str | None:
    """An item may name its org; it must be the one the request writes to (API.md, Org)."""
    org_slug = (info.context or {}).get("org_slug")
    if value not in NONE_OR_EMPTY and org_slug is not None and value != org_slug:
        raise PydanticCustomError("org_mismatch", f"Must be this token's organisation {org_slug!r}.")
    return value


OrgId = Annotated[str | None, AfterValidator(org_matches), Field(
    default=None, description="If given, the slug of the token's org.")]


# --- Errors -----------------------------------------------------------------------------------

_MESSAGES: dict[str, Callable[[dict], str]] = {
    "missing": lambda ctx: "This field is required.",
    "float_type": lambda ctx: "Must be a number.",
    "float_parsing": lambda ctx: "Must be a number.",
    "finite_number": lambda ctx: "Must be a finite number.",
    "int_type": lambda ctx: "Must be an integer.",
    "int_parsing": lambda ctx: "Must be an integer.",
    "int_from_float": lambda ctx: "Must be an integer.",
    "bool_type": lambda ctx: "Must be true or false.",
    "bool_parsing": lambda ctx: "Must be true or false.",
    "string_type": lambda ctx: "Must be a string.",
    "string_too_short": lambda ctx: "Must not be blank." if ctx.get("min_length") == 1
    else f"At least {ctx['min_length']} characters.",
    "string_too_long": lambda ctx: f"At most {ctx['max_length']} characters.",
    "string_pattern_mismatch": lambda ctx: PATTERN_MESSAGES.get(ctx["pattern"], f"Must match {ctx['pattern']}."),
    "greater_than_equal": lambda ctx: f"Must be at least {ctx['ge']:g}.",
    "greater_than": lambda ctx: f"Must be greater than {ctx['gt']:g}.",
    "less_than_equal": lambda ctx: f"Must be at most {ctx['le']:g}.",
    "less_than": lambda ctx: f"Must be less than {ctx['lt']:g}.",
    "literal_error": lambda ctx: f"Must be one of: {ctx['expected']}.".replace("'", ""),
    "enum": lambda ctx: f"Must be one of: {ctx['expected']}.".replace("'", ""),
    "dict_type": lambda ctx: "Must be an object.",
    "model_type": lambda ctx: "Must be a JSON object.",
    "model_attributes_type": lambda ctx: "Must be a JSON object.",
    "list_type": lambda ctx: "Must be a list.",
    "too_long": lambda ctx: f"At most {ctx['max_length']} items.",
    "datetime_type": lambda ctx: "Must be an ISO-8601 date-time string.",
    "datetime_parsing": lambda ctx: "Must be an ISO-8601 date-time.",
    "datetime_from_date_parsing": lambda ctx: "Must be an ISO-8601 date-time.",
    "union_tag_invalid": lambda ctx: f"Unknown {ctx['discriminator']}; one of: {ctx['expected_tags']}.".replace(
        "'", ""),
    "union_tag_not_found": lambda ctx: "This field is required.",
}


def _message(error: ErrorDetails) -> str:
    """Pydantic's own errors get the API's wording; our custom errors already carry theirs."""
    translate = _MESSAGES.get(error["type"])
    if translate is not None:
        try:
            return translate(error.get("ctx", {}))
        except (KeyError, TypeError, ValueError):
            pass
    return error["msg"].removeprefix("Value error, ")


def _field_name(location: tuple, problem: ErrorDetails) -> str:
    """``("tags", "env")`` → ``tags``: a message belongs to the top-level field the client sent.

    A rule across fields (checked in a dataclass's ``__post_init__``) names its field in the error's ``ctx``;
    a tagged union's unknown or missing tag names the discriminator field.
    """
    if location:
        return str(location[0])
    context = problem.get("ctx", {})
    if problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return str(context.get("discriminator", "type")).strip("'")
    return str(context.get("field", "non_field_errors"))


def _without_tag(location: tuple, problem: ErrorDetails) -> tuple:
    """Pydantic puts a tagged union's tag first in the location of its members' errors:
    ``("session", "user_id")`` → ``("user_id",)``."""
    if location and problem["type"] not in ("union_tag_invalid", "union_tag_not_found"):
        return location[1:]
    return location


def field_messages(error: ValidationError, *, skip: int = 0) -> dict[str, list[str]]:
    messages: dict[str, list[str]] = {}
    for problem in error.errors(include_url=False, include_input=False):
        field = _field_name(problem["loc"][skip:], problem)
        text_ = _message(problem)
        if text_ not in messages.setdefault(field, []):
            messages[field].append(text_)
    return messages


def item_problems(error: ValidationError, *, tagged: bool = False) -> list[dict]:
    """Errors of a batch, per item: ``[{"index": i, "field": ["message"]}, ...]``. ``tagged``: the items are
    a tagged union (``TaggedItem``)."""
    by_index: dict[int, dict[str, list[str]]] = {}
    for problem in error.errors(include_url=False, include_input=False):
        location = problem["loc"]
        index = int(location[0]) if location and isinstance(location[0], int) else 0
        fields = by_index.setdefault(index, {})
        inside = _without_tag(location[1:], problem) if tagged else location[1:]
        field = _field_name(inside, problem)
        message = _message(problem)
        if message not in fields.setdefault(field, []):
            fields[field].append(message)
    return [{"index": index, **fields} for index, fields in sorted(by_index.items())]


# --- Bodies and batches ------------------------------------------------------------------------


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def json_body(request) -> Any:
    """The request's JSON, parsed once (a nesting too deep to parse is a 400, not a crash)."""
    content_type = request.content_type or ""
    if request.body and not _is_json(content_type):
        raise exceptions.UnsupportedMediaType(content_type or "(none)")
    if not request.body:
        raise exceptions.ValidationError({"body": ["A JSON body is required."]})
    try:
        return from_json(request.body)
    except ValueError as error:
        raise exceptions.ValidationError({"body": [f"Invalid JSON: {error}"]}) from None


def batch_items(data) -> tuple[list, bool]:
    """One object, a JSON array, or ``{"events": [...]}`` → (1..API_MAX_BATCH_ITEMS items, sent alone)."""
    if isinstance(data, dict) and "events" in data:
        items, field = data["events"], "events"
    elif isinstance(data, list):
        items, field = data, "non_field_errors"
    elif isinstance(data, dict):
        return [data], True
    else:
        raise exceptions.ValidationError({"body": ['Send one object, a JSON array, or {"events": [...]}.']})
    if not isinstance(items, list):
        raise exceptions.ValidationError({field: ["Must be a list of objects."]})
    limit = settings.API_MAX_BATCH_ITEMS
    if not 1 <= len(items) <= limit:
        raise exceptions.ValidationError({field: [f"A batch holds 1 to {limit} items; got {len(items)}."]})
    return items, False


@functools.cache
def _list_adapter(item_model):
    return TypeAdapter(list[item_model])


@functools.cache
def _adapter(item_model):
    return TypeAdapter(item_model)  # building one costs about 1.5 ms: once per model


def validate_items(item_model, data, **context) -> list:
    """The items of a batch, validated whole: every item valid, or a 400 listing each bad item."""
    items, alone = batch_items(data)
    try:
        return _list_adapter(item_model).validate_python(items, context=ingest_context(**context))
    except ValidationError as error:
        problems = item_problems(error, tagged=issubclass(item_model, TaggedItem))
        if alone:
            raise exceptions.ValidationError({k: v for k, v in problems[0].items() if k != "index"}) from None
        raise BatchInvalid(problems) from None


class TaggedItem:
    """Marks a batch item that is one of several models told apart by a tag field, so that errors name the
    member's fields: ``class Item(RootModel[Annotated[A | B, Field(discriminator="type")]], TaggedItem)``."""


class ContractError(ValueError):
    """Bad input given from Python (the in-process client, ``record_metric``): names each bad field."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))


def validate_one(item_model, data: dict, **context):
    """One item from Python code, checked as the API checks it; raises ContractError naming the fields."""
    try:
        return _adapter(item_model).validate_python(data, context=ingest_context(**context))
    except ValidationError as error:
        raise ContractError(field_messages(error)) from None


def validate_body(model, data, **context):
    try:
        return model.model_validate(data, context=ingest_context(**context))
    except ValidationError as error:
        raise exceptions.ValidationError(field_messages(error)) from None


# --- Error responses in the schema ----------------------------------------------------------------


class FieldErrors(ResponseContract):
    errors: dict[str, list[str]] = Field(description="Each bad field with its messages.")


class BatchItemErrors(ResponseContract):
    errors: list[dict[str, Any]] | dict[str, list[str]] = Field(
        description='Per bad item: {"index": i, "field": ["message"]}; or field errors for the request '
                    "as a whole (its org, its shape).")


class ErrorDetail(ResponseContract):
    detail: str


ERROR_DESCRIPTIONS = {
    400: "Bad input: every bad field is named.",
    401: "No token, or an invalid or revoked one.",
    403: "The token is read-only, or a session user is not staff.",
    404: "No such object in the caller's org (for a list: a page past the last one).",
    409: "The object's state does not allow this.",
    413: "The body is larger than the limit (10 MB).",
    415: "The body is not JSON.",
    429: "Over the caller's request budget (API_THROTTLE_RATE); retry after Retry-After seconds.",
    503: "The database is unavailable; retry after Retry-After seconds (nothing was stored).",
}


def error_responses(codes: Iterable[int], *, batch: bool = False) -> dict[int, OpenApiResponse]:
    responses = {}
    for code in codes:
        body = (BatchItemErrors if batch else FieldErrors) if code == 400 else ErrorDetail
        responses[code] = OpenApiResponse(response=body, description=ERROR_DESCRIPTIONS[code])
    return responses


# --- The endpoint decorator ---------------------------------------------------------------------


def endpoint(*, response, summary: str, query: type[Query] | None = None, body: type[RequestContract] | None = None,
             items: type | None = None, status_code: int = status.HTTP_200_OK,
             errors: Iterable[int] = (), description: str = "", operation_id: str | None = None,
             parameters: list[OpenApiParameter] | None = None, paginated: bool = False):
    """Declare an API operation once: parse and validate its input, render its output, document both.

    ``query``: a ``Query`` model, passed to the view as ``query=``. ``body``: a model of the JSON body,
    passed as ``body=``. ``items``: the model of one item of a batch — the view gets ``org`` (the org
    written to) and ``items``. The view returns a ``ResponseContract`` (or a list of them with
    ``paginated``); its class is ``response``. Every operation documents 400, 401 and 403; add
    ``errors=(404, 409)`` for the ones that may answer those. Bodies add 413 and 415.
    """
    codes = {400, 401, 403, *errors}
    if body or items:
        codes |= {413, 415}
    schema_responses: dict[int, Any] = {status_code: response}
    request_schema = batch_of(items) if items is not None else body
    extra_parameters = list(parameters or [])
    if paginated:
        codes.add(404)
        extra_parameters += PAGE_PARAMETERS
        schema_responses[status_code] = page_of(response)
    schema_responses.update(error_responses(sorted(codes), batch=items is not None))

    def decorate(method):
        @functools.wraps(method)
        def view_method(view, request, *args, **kwargs):
            if query is not None:
                kwargs["query"] = query.from_request(request)
            if items is not None:
                org = view.write_org()
                kwargs["org"] = org
                kwargs["items"] = _validated_batch(items, request, org)
            elif body is not None:
                kwargs["body"] = validate_body(body, json_body(request) if request.body else {})
            result = method(view, request, *args, **kwargs)
            if isinstance(result, HttpResponse):
                return result
            if items is not None and hasattr(result, "accepted"):
                ingest_counts.count_received(_kind(request), result.accepted, getattr(result, "duplicates", 0))
            if paginated:
                return view.paginated(result)
            return Response(result.render(), status=status_code)

        return extend_schema(
            summary=summary, description=description or None, operation_id=operation_id,
            parameters=[*(query.openapi_parameters() if query else []), *extra_parameters],
            request=request_schema, responses=schema_responses,
        )(view_method)

    return decorate


def _kind(request) -> str:
    """An ingest endpoint's label on /metrics: its URL name."""
    match = request.resolver_match
    return (match.url_name if match else None) or "unnamed"


def _validated_batch(item_model, request, org) -> list:
    """``validate_items`` on the request's JSON; a rejected request is counted with all its items."""
    data = None
    try:
        valid = _valid_array(item_model, request, org_slug=org.slug)
        if valid is not None:
            return valid
        data = json_body(request)
        return validate_items(item_model, data, org_slug=org.slug)
    except exceptions.APIException:
        ingest_counts.count_rejected(_kind(request), _items_sent(data))
        raise


def _valid_array(item_model, request, **context) -> list | None:
    """The items of a body that is a JSON array of 1 to API_MAX_BATCH_ITEMS valid items; None for any other
    body, which ``validate_items`` then answers (its errors, its other shapes)."""
    body = request.body
    if not _is_json(request.content_type or "") or body[:64].lstrip()[:1] != b"[":
        return None
    try:
        items = validate_json_array(item_model, body, **context)
    except ValidationError:
        return None
    return items if 1 <= len(items) <= settings.API_MAX_BATCH_ITEMS else None


def validate_json_array(item_model, body: bytes, **context) -> list:
    """A JSON array of items validated from its bytes: half the time of parsing it to Python objects and
    validating those (5 µs an item against 11). Raises pydantic's ValidationError."""
    return _list_adapter(item_model).validate_json(body, context=ingest_context(**context))


def _items_sent(data) -> int:
    """The items a request carried (as ``batch_items`` finds them), or 1 when it was no batch at all."""
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        return len(data["events"])
    return len(data) if isinstance(data, list) else 1


@functools.cache
def batch_of(item_model):
    """The request schema of every batch: one item, an array of 1 to 10,000, or ``{"events": [...]}``."""
    limit = settings.API_MAX_BATCH_ITEMS
    items = Annotated[list[item_model], Field(min_length=1, max_length=limit)]
    envelope = create_model(f"{item_model.__name__}Envelope", events=(items, ...))
    return type(f"{item_model.__name__}Batch", (RootModel[item_model | items | envelope],), {
        "__doc__": f"One {item_model.__name__}, an array of 1 to {limit}, or {{\"events\": [...]}}."})


@functools.cache
def page_of(item_model):
    """A page of a list (API.md, Lists)."""
    return create_model(
        f"Paginated{item_model.__name__}List", __base__=ResponseContract,
        count=(int, ...), next=(str | None, None), previous=(str | None, None), results=(list[item_model], ...))


PAGE_PARAMETERS = [
    OpenApiParameter("page", type={"type": "integer", "minimum": 1}, description="Page number (from 1)."),
    OpenApiParameter("page_size", type={"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                     description=f"Results per page (default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE})."),
]


# --- Org, windows and tag filters (API.md, Windows; Tag filters) ----------------------------------------

HOURS_LIMIT = MAX_WINDOW.days * 24


class OrgQuery(Query):
    """Reads that staff may narrow to one org (a token always reads its own; API.md, Org)."""

    org: str | None = Field(None, pattern=SLUG_PATTERN, description="Staff only: the org to read (default all).")


class WindowQuery(Query):
    """``hours=N`` or ``days=N`` (rolling, ending now), or ``start`` and ``end``; mixing forms is a 400."""

    default_window: ClassVar[timedelta] = timedelta(hours=24)

    hours: float | None = Field(None, ge=MIN_ROLLING, le=HOURS_LIMIT, description="Rolling window ending now, "
                                                                                "in hours.")
    days: float | None = Field(None, ge=MIN_ROLLING, le=MAX_WINDOW.days, description="Rolling window ending now, "
                                                                                   "in days.")
    start: datetime | None = Field(None, description="Window start (ISO-8601; naive = UTC). With end, or alone "
                                                    "for a window ending now.")
    end: datetime | None = Field(None, description="Window end (default now). Needs start.")

    @model_validator(mode="after")
    def _one_form(self):
        try:
            self.window()
        except WindowError as error:
            raise InvalidParameter(error.field, error.message) from None
        return self

    def window(self, default: timedelta | None = None) -> Window:
        return Window.resolve(hours=self.hours, days=self.days, start=self.start, end=self.end,
                              default=default or self.default_window)


MAX_TAG_FILTERS = 20


# The Field comes first: a constraint after a validator would be checked but left out of the schema.
TagFilter = Annotated[str, Field(pattern=TAG_FILTER)]


class TaggedWindowQuery(WindowQuery):
    tag: list[TagFilter] = Field(default_factory=list, max_length=MAX_TAG_FILTERS,
                                 description="key:value, repeatable, ANDed; split on the first colon.")

    @model_validator(mode="after")
    def _one_value_per_key(self):
        self.tag_filters()
        return self

    def tag_filters(self) -> dict[str, str]:
        filters: dict[str, str] = {}
        for value in self.tag:
            key, _, tag_value = value.partition(":")
            if filters.get(key, tag_value) != tag_value:
                raise InvalidParameter("tag", f"Tag {key!r} is filtered on two different values.")
            filters[key] = tag_value
        return filters
