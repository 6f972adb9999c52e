"""The conventions of API.md that every endpoint shares."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from analytics.models import ApiToken

pytestmark = pytest.mark.django_db


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route


def _concrete(route: str) -> str:
    import re

    route = re.sub(r"<int:[^>]+>", "1", route)
    route = re.sub(r"<[^>]+>", "sample", route)
    return "/" + route.lstrip("^").rstrip("$")


def api_routes():
    return sorted({_concrete(r) for r in _walk(get_resolver().url_patterns) if r.startswith("api/")})


def test_the_resolver_has_api_routes():
    routes = api_routes()
    assert "/api/v1/analytics/me" in routes
    assert "/api/schema/" in routes


@pytest.mark.parametrize("path", api_routes())
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_api_route_refuses_an_anonymous_request(client, path, method):
    response = getattr(client, method)(path)
    assert response.status_code == 401, (path, method, response.status_code)


def test_a_token_reads_and_is_scoped_to_its_org(personas):
    response = personas.member.get("me")
    assert response.status_code == 200
    assert response.json()["org"] == "acme"
    assert response.json()["read_only"] is False


def test_bad_and_revoked_tokens_get_401(personas):
    from tests.conftest import token_client

    assert token_client("twa_not-a-token").get("/api/v1/analytics/me").status_code == 401
    personas.member.token.revoke()
    response = personas.member.get("me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_read_only_token_reads_but_cannot_write(personas):
    assert personas.reader.get("tokens").status_code == 200
    response = personas.reader.delete(f"tokens/{personas.member.token.pk}")
    assert response.status_code == 403
    personas.member.token.refresh_from_db()
    assert not personas.member.token.is_revoked


def test_another_orgs_object_answers_404(personas):
    response = personas.member.get(f"tokens/{personas.outsider.token.pk}")
    assert response.status_code == 404
    assert personas.member.delete(f"tokens/{personas.outsider.token.pk}").status_code == 404
    personas.outsider.token.refresh_from_db()
    assert not personas.outsider.token.is_revoked


def test_lists_show_only_the_callers_org_and_are_paginated(personas):
    body = personas.member.get("tokens").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert {item["org"] for item in body["results"]} == {"acme"}
    assert body["count"] == 2  # member and reader
    assert all("key_hash" not in item for item in body["results"])


def test_staff_read_all_orgs_or_one(personas):
    assert personas.staff.get("tokens").json()["count"] == 3
    assert personas.staff.get("tokens", {"org": "globex"}).json()["count"] == 1
    response = personas.staff.get("tokens", {"org": "nope"})
    assert response.status_code == 400
    assert "org" in response.json()["errors"]


def test_a_non_staff_session_is_refused(db, client, django_user_model):
    user = django_user_model.objects.create_user("someone", password="pw")
    client.force_login(user)
    assert client.get("/api/v1/analytics/me").status_code == 403


def test_a_writing_token_revokes_its_own_orgs_token(personas):
    response = personas.member.delete(f"tokens/{personas.reader.token.pk}")
    assert response.status_code == 204
    assert ApiToken.objects.get(pk=personas.reader.token.pk).is_revoked
    assert personas.reader.get("me").status_code == 401
    # Gone from the API (a deleted resource answers 404), kept in the database for the record.
    assert personas.member.get(f"tokens/{personas.reader.token.pk}").status_code == 404
    assert personas.member.delete(f"tokens/{personas.reader.token.pk}").status_code == 404
    assert personas.member.get("tokens").json()["count"] == 1


@pytest.mark.parametrize("path", ["me", "me/", "tokens", "tokens/"])
def test_paths_answer_with_and_without_trailing_slash(personas, path):
    assert personas.member.get(path).status_code == 200


def test_a_body_over_10_mb_gets_413(personas):
    body = b"[" + b" " * (10 * 1024 * 1024 + 1) + b"]"
    response = personas.member.client.generic(
        "POST", "/api/v1/analytics/me", body, content_type="application/json"
    )
    assert response.status_code == 413
    assert "body" in response.json()["errors"]


def test_unknown_api_path_is_json_404(personas):
    response = personas.member.get("/api/v1/analytics/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_schema_and_docs_are_readable_by_tokens_and_staff(personas):
    for persona in (personas.member, personas.reader, personas.staff):
        assert persona.get("/api/schema/").status_code == 200
        assert persona.get("/api/docs/").status_code == 200


def test_schema_lists_each_path_once(personas):
    import yaml  # drf-spectacular depends on PyYAML

    schema = yaml.safe_load(personas.member.get("/api/schema/").content)
    paths = schema["paths"]
    assert "/api/v1/analytics/me" in paths
    assert not [path for path in paths if path.endswith("/") and path.rstrip("/") in paths]


@pytest.mark.parametrize(("path", "params", "field"), [
    ("tokens", {"org": ""}, "org"),
    ("metrics", {"org": ""}, "org"),
    ("metrics/cpu/statistics", {"start": ""}, "start"),
    ("metrics/cpu/statistics", {"hours": ""}, "hours"),
    ("metrics/cpu/statistics", {"tag": ""}, "tag"),
    ("metrics", {"page_size": ""}, "page_size"),
])
def test_a_parameter_given_empty_is_checked_not_ignored(personas, path, params, field):
    # The schema says what a value must look like; an empty one does not, so it is a 400, not "absent".
    for persona in (personas.member, personas.staff):
        response = persona.get(path, params)
        assert response.status_code == 400, (persona.name, path, params, response.content)
        assert field in response.json()["errors"]


@pytest.mark.parametrize("hours", ["5e-324", "0.0005"])
def test_a_rolling_window_too_short_to_be_a_window_is_a_400(personas, hours):
    response = personas.member.get("metrics/cpu/statistics", {"hours": hours})
    assert response.status_code == 400
    assert response.json()["errors"] == {"hours": ["Must be at least 0.001."]}
    assert personas.member.get("metrics/cpu/statistics", {"hours": "0.001"}).status_code == 200


def _schema(persona):
    import yaml

    return yaml.safe_load(persona.get("/api/schema/").content)


def test_the_schema_states_the_tag_filter_pattern(personas):
    parameters = _schema(personas.member)["paths"]["/api/v1/analytics/metrics/{name}/statistics"]["get"]["parameters"]
    tag = next(p for p in parameters if p["name"] == "tag")
    assert tag["schema"]["items"]["pattern"] == "^[^:\\x00-\\x1f\\x7f-\\x9f]+:[^\\x00-\\x1f\\x7f-\\x9f]*$"


@pytest.mark.parametrize("tag", ["a\x00b:c", "a:b\x00", "host:\x13", "nocolon"])
def test_a_tag_filter_with_a_control_character_or_no_colon_is_a_400(personas, tag):
    response = personas.member.get("metrics/cpu/statistics", {"tag": tag})
    assert response.status_code == 400
    assert response.json()["errors"] == {"tag": ["Must be key:value, printable characters only."]}


def test_batch_bodies_are_required_and_optional_bodies_are_not(personas):
    paths = _schema(personas.member)["paths"]
    assert paths["/api/v1/analytics/metrics/batch"]["post"]["requestBody"]["required"] is True
    assert paths["/api/v1/analytics/skills/executions"]["post"]["requestBody"]["required"] is True
    assert personas.member.post("metrics/batch").status_code == 400
    partial = paths["/api/v1/analytics/alerts/rules/{id}"]["patch"]["requestBody"]
    assert not partial.get("required")


def test_a_page_past_the_last_is_a_documented_404(personas):
    response = personas.member.get("tokens", {"page": 99})
    assert response.status_code == 404
    operation = _schema(personas.member)["paths"]["/api/v1/analytics/tokens"]["get"]
    assert "404" in operation["responses"]


@pytest.mark.parametrize("path", [
    "metrics/a%00b/statistics", "metrics/a%1fb/time-series", "skills/a%00b", "skills/a%00b/trend",
    "monitoring/health/a%00b", "monitoring/sla/a%7fb", "alerts/rules/1%00", "tokens/1%00",
])
def test_a_control_character_in_a_path_parameter_is_a_json_404(personas, path):
    # PostgreSQL cannot compare text holding NUL: such a path must never reach a query.
    response = personas.member.get("/api/v1/analytics/" + path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_path_parameters_state_their_pattern(personas):
    paths = _schema(personas.member)["paths"]
    for path, name in (("/api/v1/analytics/metrics/{name}/statistics", "name"),
                       ("/api/v1/analytics/monitoring/sla/{service}", "service"),
                       ("/api/v1/analytics/skills/{skill_id}", "skill_id")):
        parameter = next(p for p in paths[path]["get"]["parameters"] if p["name"] == name)
        assert "\\x00-\\x1f" in parameter["schema"]["pattern"] or parameter["schema"]["pattern"].startswith(
            "^[A-Za-z0-9]"), (path, parameter)


def test_every_contract_has_its_own_schema_name():
    """drf-spectacular names a pydantic model's component by its class name: two contracts of one name would
    share one component, and one of them would be documented wrongly (a trend point once was)."""
    from django.urls import get_resolver

    from analytics.platform.contracts import RequestContract, ResponseContract

    get_resolver().url_patterns  # noqa: B018  (imports every view, hence every contract)

    def all_subclasses(cls):
        for subclass in cls.__subclasses__():
            yield subclass
            yield from all_subclasses(subclass)

    by_name: dict[str, set[str]] = {}
    for contract in [*all_subclasses(ResponseContract), *all_subclasses(RequestContract)]:
        if "[" not in contract.__name__:  # pydantic's parametrised generics
            by_name.setdefault(contract.__name__, set()).add(f"{contract.__module__}.{contract.__qualname__}")
    assert {name: places for name, places in by_name.items() if len(places) > 1} == {}
