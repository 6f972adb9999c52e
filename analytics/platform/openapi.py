"""OpenAPI: the schema hooks and extensions (drf-spectacular) of the API's conventions."""

from drf_spectacular.drainage import set_override
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from pydantic.json_schema import model_json_schema


def drop_trailing_slash_twins(endpoints, **kwargs):
    """Every API path answers with and without a trailing slash; document each once."""
    return [endpoint for endpoint in endpoints if not (endpoint[0].endswith("/") and endpoint[0] != "/")]


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "analytics.platform.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An org's API token: `Bearer twa_...`"}


class PydanticContract(OpenApiSerializerExtension):
    """drf-spectacular's pydantic support, with request bodies in pydantic's *validation* schema.

    The contrib extension renders every model in serialization mode; a request contract's validation
    schema is the one clients must follow (its defaults, its before-validators' input types).
    """

    target_class = "pydantic.BaseModel"
    match_subclasses = True
    priority = 1

    def get_name(self, auto_schema, direction):
        set_override(self.target, "suppress_collision_warning", True)
        return self.target.__name__

    def map_serializer(self, auto_schema, direction):
        mode = "validation" if direction == "request" else "serialization"
        schema = model_json_schema(self.target, ref_template="#/components/schemas/{model}", mode=mode)
        for sub_name, sub_schema in schema.pop("$defs", {}).items():
            auto_schema.registry.register_on_missing(ResolvedComponent(
                name=sub_name, type=ResolvedComponent.SCHEMA, object=sub_name, schema=sub_schema))
        return schema


# The error statuses every operation of the API can answer, by convention (API.md, Conventions).
_WRITE_METHODS = {"post", "put", "patch", "delete"}


_RETRY_LATER = {429, 503}


def document_conventions(result, generator, request, public):
    """Postprocessing hook: what the conventions give every operation, written into the schema."""
    from analytics.platform.contracts import ERROR_DESCRIPTIONS, ErrorDetail, FieldErrors

    components = result.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorDetail, FieldErrors):
        components.setdefault(model.__name__, model_json_schema(model, mode="serialization"))
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _WRITE_METHODS | {"get"}:
                continue
            _require_body_unless_empty_is_valid(operation, components)
            _add_conventional_errors(path, method, operation, ERROR_DESCRIPTIONS)
    return result


def _require_body_unless_empty_is_valid(operation: dict, components: dict) -> None:
    """An empty body is read as ``{}``: the body is optional only if ``{}`` is a valid one.

    drf-spectacular marks a body required only for an object with required fields; a batch (one
    object, an array or an envelope) has none at its root, yet an empty batch body is a 400.
    """
    body = operation.get("requestBody")
    if body is None or body.get("required"):
        return
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        ref = schema.get("$ref", "")
        if ref:
            schema = components.get(ref.rsplit("/", 1)[-1], {})
        if schema.get("type") != "object" or schema.get("required"):
            body["required"] = True


def _add_conventional_errors(path: str, method: str, operation: dict, descriptions: dict) -> None:
    """401 and 403 everywhere (a token is required; a read-only token cannot write; a session must be
    staff's), 429 (throttled) and 503 (the database unavailable) everywhere, with ``Retry-After``; 400 where
    there are query parameters or a body, 404 where there is a path parameter or a page (past the last
    one), 413 and 415 where there is a body. An operation's own declaration of a status wins.
    """
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    codes = {401, 403, 429, 503}
    if has_body or any(p["in"] == "query" for p in parameters) or method in _WRITE_METHODS:
        codes.add(400)
    if any(p["in"] == "path" or p["name"] == "page" for p in parameters) or "{" in path:
        codes.add(404)
    if has_body:
        codes |= {413, 415}
    responses = operation.setdefault("responses", {})
    for code in sorted(codes):
        if str(code) in responses:
            continue
        component = "FieldErrors" if code == 400 else "ErrorDetail"
        responses[str(code)] = {
            "description": descriptions[code],
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
        }
        if code in _RETRY_LATER:
            responses[str(code)]["headers"] = {"Retry-After": {
                "description": "Seconds to wait before sending the request again.",
                "schema": {"type": "integer", "minimum": 1}}}
