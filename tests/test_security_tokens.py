"""API tokens: stored as hashes only, compared in constant time, and read-only ones never write
(docs/security.md, "Tokens").

The write routes are found by walking Django's URL resolver, not listed by hand: every route of a DRF view
that has a POST, PUT, PATCH or DELETE handler, the OTLP receiver included (which is not in the OpenAPI
schema). Each is called with a read-only token of the org that owns the objects in its path; each answers
403 and nothing in the database changes. The one exception is declared below with its reason.
"""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.views import APIView

from analytics.platform.tenancy import ApiToken, Organization
from tests.conftest import token_client
from tests.test_security_isolation import schema_operations, seed_org

WRITE_METHODS = ("post", "put", "patch", "delete")
# POSTs that write nothing, so that a read-only token may make them (their views' docstrings say why).
READS_BY_POST = {("POST", "/api/v1/analytics/alerts/rules/preview")}


def routes(patterns=None, prefix: str = ""):
    """(route, URLPattern) of every URL the project serves, the routes of included URLconfs joined up."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def write_routes() -> list[tuple[str, str]]:
    """(METHOD, route) of every DRF view's write handler, trailing-slash twins set aside."""
    found = set()
    for route, pattern in routes():
        view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        if not (isinstance(view, type) and issubclass(view, APIView)):
            continue
        for method in WRITE_METHODS:
            if hasattr(view, method) and method in view.http_method_names:
                found.add((method.upper(), "/" + route.rstrip("/")))
    return sorted(found)


def url_of(route: str, seeded: dict) -> str:
    """The route with its parameters filled: the org's own objects and names."""
    by_prefix = [("tokens/", "token"), ("alerts/rules/", "rule"), ("alerts/incidents/", "incident"),
                 ("alerts/channels/", "channel"), ("alerts/silences/", "silence"),
                 ("alerts/maintenance-windows/", "window")]

    def value(match: re.Match) -> str:
        before = route[:match.start()]
        for prefix, key in by_prefix:
            if before.endswith(prefix):
                return str(seeded[key])
        return "x"

    return re.sub(r"<[^>]+>", value, route)


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def test_a_token_is_stored_as_its_sha256_only(db):
    org = Organization.objects.create(slug="hashing")
    token, raw = ApiToken.issue(org, name="ci")
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert not any(raw in str(value) for value in row.values()), "the raw token is stored"
    assert raw.startswith(row["prefix"]) and len(row["prefix"]) < len(raw) / 3  # enough to recognise, not to use
    assert ApiToken.find_active(raw) == token
    assert ApiToken.find_active(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert ApiToken.find_active(row["key_hash"]) is None  # the hash is no token: a stolen row cannot call


def test_a_wrong_or_revoked_token_gets_401(db):
    org = Organization.objects.create(slug="revoked")
    token, raw = ApiToken.issue(org)
    assert token_client(raw).get("/api/v1/analytics/me").status_code == 200
    assert token_client(raw + "x").get("/api/v1/analytics/me").status_code == 401
    token.revoke()
    assert token_client(raw).get("/api/v1/analytics/me").status_code == 401


def _token_lookups(queries) -> int:
    return sum('FROM "analytics_apitoken"' in query["sql"] for query in queries.captured_queries)


def test_a_token_found_active_is_reused_for_api_token_cache_seconds_without_a_lookup(db, settings):
    settings.API_TOKEN_CACHE_SECONDS = 5
    _, raw = ApiToken.issue(Organization.objects.create(slug="cached"))
    client = token_client(raw)
    with CaptureQueriesContext(connection) as first:
        assert client.get("/api/v1/analytics/me").status_code == 200
    with CaptureQueriesContext(connection) as again:
        assert client.get("/api/v1/analytics/me").status_code == 200
    assert (_token_lookups(first), _token_lookups(again)) == (1, 0)
    settings.API_TOKEN_CACHE_SECONDS = 0  # off: every request looks its token up
    with CaptureQueriesContext(connection) as uncached:
        assert client.get("/api/v1/analytics/me").status_code == 200
    assert _token_lookups(uncached) == 1


@pytest.mark.parametrize("revoke", ["model", "api", "admin action", "delete"])
def test_a_token_revoked_in_this_process_is_refused_at_once_although_it_was_reused(db, settings, admin_client,
                                                                                    revoke):
    settings.API_TOKEN_CACHE_SECONDS = 3600
    org = Organization.objects.create(slug="revoked-here")
    token, raw = ApiToken.issue(org)
    other, other_raw = ApiToken.issue(org)
    assert token_client(raw).get("/api/v1/analytics/me").status_code == 200  # found, kept
    if revoke == "model":
        token.revoke()
    elif revoke == "api":
        assert token_client(other_raw).delete(f"/api/v1/analytics/tokens/{token.pk}").status_code == 204
    elif revoke == "admin action":
        admin_client.post("/admin/analytics/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    else:
        token.delete()
    assert token_client(raw).get("/api/v1/analytics/me").status_code == 401
    assert token_client(other_raw).get("/api/v1/analytics/me").status_code == 200  # only that one


def test_a_token_revoked_by_another_process_is_refused_once_its_reuse_period_is_over(db, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0.5
    token, raw = ApiToken.issue(Organization.objects.create(slug="revoked-elsewhere"))
    client = token_client(raw)
    assert client.get("/api/v1/analytics/me").status_code == 200
    # Another worker revokes it: this process hears nothing of it (no signal here, only the row changes).
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert client.get("/api/v1/analytics/me").status_code == 200  # the documented bound: up to the period
    time.sleep(0.6)
    assert client.get("/api/v1/analytics/me").status_code == 401


def test_the_walk_finds_every_write_operation_of_the_schema():
    schema_writes = {(method, path) for method, path in schema_operations() if method.lower() in WRITE_METHODS}
    walked = {(method, re.sub(r"<[^>]+>", "{}", route)) for method, route in write_routes()}
    missing = {(m, p) for m, p in schema_writes if (m, re.sub(r"\{[^}]+\}", "{}", p)) not in walked}
    assert not missing, f"the URL walk misses {missing}"
    assert ("POST", "/otlp/v1/metrics") in walked and len(walked) > len(schema_writes)


@pytest.mark.django_db
def test_a_read_only_token_gets_403_on_every_write_route_and_changes_nothing():
    org = Organization.objects.create(slug="readers")
    _, writer = ApiToken.issue(org, name="writer")
    seeded = seed_org(token_client(writer), org)
    reader_token, raw = ApiToken.issue(org, name="reader", read_only=True)
    reader = token_client(raw)
    writes = write_routes()
    assert len(writes) >= 25, writes
    before = row_counts()
    for method, route in writes:
        url = url_of(route, seeded)
        response = getattr(reader, method.lower())(url, {}, format="json")
        if (method, route) in READS_BY_POST:
            assert response.status_code != 403, f"{method} {route}: a read the read-only token may make"
            continue
        assert response.status_code == 403, f"{method} {url} let a read-only token through: {response.status_code}"
        if not route.startswith("/otlp/"):  # the OTLP receiver answers in OTLP's encoding
            assert response.json() == {"detail": "This token is read-only."}, f"{method} {url}"
    assert row_counts() == before, "a read-only token's request changed the database"
    reader_token.refresh_from_db()
    assert not reader_token.is_revoked
