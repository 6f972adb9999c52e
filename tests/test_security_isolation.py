"""The isolation matrix: every operation of the OpenAPI schema, called with another org's token, shows nothing
of the first org (docs/security.md, "Isolation").

Org "alpha" gets one of everything through the API (metrics, skill executions, ratings, installs, activity,
a rule, an incident, a channel, a silence, a maintenance window, a spare token), each carrying a marker string.
Then, for every path and method of the schema drf-spectacular generates:

- an operation on one of alpha's objects (an integer id in the path), called with org "beta"'s token,
  answers 404, word for word as for an id that names nothing, and alpha's object is unchanged afterwards;
- an operation naming alpha's data by name (a metric, a skill, a user, an agent) answers beta either 404 or
  exactly what it answers "gamma", an org with no data at all (times and the org's own slug set aside);
- every read without a path parameter (lists, dashboards, leaderboards, performance) answers beta as it
  answers gamma, also with ``?org=alpha`` (a token's org is its token's, whatever the query says);
- and no answer to beta contains any of alpha's markers or object ids.

Services are platform-wide (API.md, Monitoring): any token reads them, so they are no org's data. The token
reads (``tokens``, ``me``) list the caller's own token, so beta and gamma differ there by their own token;
those answers are held to the marker check only. Django's test client, no server: it runs in seconds.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from drf_spectacular.generators import SchemaGenerator

from analytics.platform.tenancy import ApiToken, Organization
from tests.conftest import token_client

API = "/api/v1/analytics/"
ALPHA, BETA, GAMMA = "tenant-alpha", "tenant-beta", "tenant-gamma"
NO_SUCH_ID = 2_000_000_000
MARK = "zq7alpha"  # in every name alpha stores: no answer to another org may contain it
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
# Answers that hold the caller's own token (its id, name and prefix): beta's and gamma's differ by design.
OWN_TOKEN_READS = {"/tokens", "/me"}
PLATFORM_WIDE = re.compile(r"/monitoring/")
# Reads where alpha's seed shows nothing, so that comparing beta with gamma there proves little: request
# tracking (performance) is off in tests, platform trends are computed by batch-track, recommendations need
# a user_id, the health summary is of platform-wide services.
SILENT_READS = {"/performance", "/platform/trends", "/skills/recommendations", "/monitoring/health"}
# The lists of objects with ids, and which of alpha's objects each would hold.
LISTS = {"/tokens": "token", "/alerts/rules": "rule", "/alerts/incidents": "incident", "/alerts/channels": "channel",
         "/alerts/silences": "silence", "/alerts/maintenance-windows": "window"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def schema_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the generated OpenAPI schema, paths without the API prefix."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, item in schema["paths"].items():
        for method in item:
            if method in {"get", "post", "put", "patch", "delete"}:
                operations.append((method.upper(), path))
    return operations


class Seeded(dict):
    """What seed_org stored for an org: ids and names, by role."""


def seed_org(client, org: Organization) -> Seeded:
    """One of everything an org may own, through the API with a writing token of ``org``."""
    from alerts.models import AlertIncident, AlertRule
    from alerts.services.evaluation import evaluate_rules

    def post(path, body, expect=201):
        response = client.post(API + path, body, format="json")
        assert response.status_code == expect, f"seeding {path}: {response.status_code} {response.content[:500]}"
        return response.json()

    now = datetime.now(UTC)
    metric, skill, user, agent = f"{MARK}.cpu", f"{MARK}-skill", f"{MARK}-user", f"{MARK}-agent"
    post("metrics/batch", [{"metric_name": metric, "value": 95.0 + i, "tags": {"host": f"{MARK}-host"},
                            "timestamp": _iso(now - timedelta(minutes=1 + i)), "event_id": f"{MARK}-{i}"}
                           for i in range(3)])
    post("skills/executions", [{"skill_id": skill, "success": i % 3 != 0, "latency_ms": 10.0 + i, "user_id": user,
                                "skill_version": "1.0.0", "error_type": "" if i % 3 else f"{MARK}Error",
                                "timestamp": _iso(now - timedelta(minutes=5 * i))} for i in range(6)])
    post("skills/ratings", {"skill_id": skill, "rating": 5, "user_id": user})
    post("skills/installs", {"skill_id": skill, "user_id": user})
    post("events", [{"type": "signup", "user_id": user, "timestamp": _iso(now - timedelta(hours=2))},
                    {"type": "session", "user_id": user, "active_seconds": 300.0},
                    {"type": "agent_call", "agent_id": agent, "user_id": user, "success": True,
                     "response_time_ms": 120.0},
                    {"type": "agent_heartbeat", "agent_id": agent, "available": True}])
    rule = post("alerts/rules", {"name": f"{MARK} cpu high", "metric_name": metric, "condition_operator": "gt",
                                 "threshold": 80.0, "window_seconds": 300, "severity": "critical",
                                 "description": f"{MARK} rule", "labels": {"team": f"{MARK}-team"}})
    evaluate_rules(datetime.now(UTC), rules=AlertRule.objects.filter(pk=rule["id"]))
    incident = AlertIncident.objects.get(rule_id=rule["id"])
    channel = post("alerts/channels", {"name": f"{MARK} hook", "kind": "webhook", "secret": f"{MARK}-secret",
                                       "config": {"url": f"https://{MARK}.example.com/hook"}, "rules": [rule["id"]]})
    silence = post("alerts/silences", {"severity": "critical", "rule": rule["id"], "matchers": {"host": f"{MARK}-h"},
                                       "note": f"{MARK} silence", "starts_at": _iso(now - timedelta(minutes=1)),
                                       "until": _iso(now + timedelta(days=1))})
    window = post("alerts/maintenance-windows", {"name": f"{MARK} window", "weekdays": [5], "start_time": "03:00",
                                                 "duration_minutes": 60, "timezone": "UTC", "rule": rule["id"]})
    spare, _ = ApiToken.issue(org, name=f"{MARK} spare token")
    return Seeded(metric=metric, skill=skill, user=user, agent=agent, rule=rule["id"], incident=incident.pk,
                  channel=channel["id"], silence=silence["id"], window=window["id"], token=spare.pk)


def path_values(seeded: Seeded) -> list[tuple[str, object]]:
    """(path regex, value) for each path parameter: the first match wins (as known_path_values in the contract
    test, tests/integration/test_api_contract.py)."""
    return [
        (r"^/tokens/\{", seeded["token"]),
        (r"^/alerts/rules/\{", seeded["rule"]),
        (r"^/alerts/incidents/\{", seeded["incident"]),
        (r"^/alerts/channels/\{", seeded["channel"]),
        (r"^/alerts/silences/\{", seeded["silence"]),
        (r"^/alerts/maintenance-windows/\{", seeded["window"]),
        (r"^/metrics/\{", seeded["metric"]),
        (r"^/skills/\{", seeded["skill"]),
        (r"^/user/\{", seeded["user"]),
        (r"^/agent/\{", seeded["agent"]),
        (r"^/monitoring/", "no-such-service"),  # services are platform-wide: nothing of alpha's to name
    ]


def fill(path: str, seeded: Seeded) -> str:
    for pattern, value in path_values(seeded):
        if re.search(pattern, path):
            return re.sub(r"\{[^}]+\}", str(value), path)
    raise AssertionError(f"no known value for the path parameters of {path}: add one to path_values")


def requested_name(path: str, seeded: Seeded) -> str:
    """The name a path asks for, as the caller wrote it ("" for an id)."""
    for pattern, value in path_values(seeded):
        if re.search(pattern, path):
            return value if isinstance(value, str) else "\0"
    return "\0"


# Bodies that would be valid for alpha: a 404 for beta must not depend on the body being wrong.
def body_for(method: str, path: str) -> dict | None:
    future = _iso(datetime.now(UTC) + timedelta(hours=2))
    if path.endswith("/silence"):
        return {"until": future, "note": "n"}
    if path.endswith(("/acknowledge", "/resolve")):
        return {"note": "n"}
    if method == "PATCH":
        return {"/alerts/rules/{id}": {"threshold": 1.0}, "/alerts/silences/{id}": {"note": "n"}}.get(
            path, {"name": "renamed"})
    return None


def normalised(response, *own_slugs: str):
    """The answer with its times and the caller's own org slug set aside: what two empty orgs must share."""
    text = TIME.sub("<time>", response.content.decode())
    for slug in own_slugs:
        text = text.replace(f'"{slug}"', '"<org>"')
    return json.loads(text) if text else None


@pytest.fixture
def tenants(db):
    alpha, beta, gamma = (Organization.objects.create(slug=slug, name=slug) for slug in (ALPHA, BETA, GAMMA))
    clients = {org.slug: token_client(ApiToken.issue(org, name="caller")[1]) for org in (alpha, beta, gamma)}
    seeded = seed_org(clients[ALPHA], alpha)
    return seeded, clients


def _call(client, method: str, url: str, body=None):
    return getattr(client, method.lower())(url, body, format="json") if body is not None else \
        getattr(client, method.lower())(url)


def test_another_orgs_token_gets_404_or_nothing_on_every_operation(tenants):
    seeded, clients = tenants
    alpha, beta, gamma = clients[ALPHA], clients[BETA], clients[GAMMA]
    operations = schema_operations()
    object_operations = [(m, p) for m, p in operations if re.search(r"\{[^}]+\}", p.removeprefix(API[:-1]))]
    assert len(operations) >= 50 and len(object_operations) >= 25, "the schema lost its operations"

    # What alpha sees of its objects before beta tries anything: unchanged afterwards.
    object_reads = {fill(p.removeprefix(API[:-1]), seeded) for m, p in object_operations
                    if m == "GET" and re.search(r"\{id\}$", p)}
    before = {url: normalised(alpha.get(API[:-1] + url)) for url in object_reads}
    assert all(answer and MARK in json.dumps(answer) for answer in before.values()), before

    checked = []
    for method, full_path in operations:
        path = full_path.removeprefix(API[:-1])
        if not re.search(r"\{[^}]+\}", path):
            continue  # reads without a parameter: the next test; writes without one write into the caller's org
        url = API[:-1] + fill(path, seeded)
        answer = _call(beta, method, url, body_for(method, path))
        # An answer may repeat the name beta asked for ("No stored analytics for agent '…'"): beta's own words.
        text = answer.content.decode().replace(requested_name(path, seeded), "")
        assert MARK not in text, f"{method} {path} showed beta alpha's data: {text[:500]}"
        if PLATFORM_WIDE.search(path):
            assert answer.status_code == 404, f"{method} {path}: {answer.status_code}"
        elif re.search(r"\{id\}", path):
            assert answer.status_code == 404, f"{method} {path} answered beta {answer.status_code}: {text[:300]}"
            # The same words as for an id that names nothing: beta cannot tell that alpha's object exists.
            missing = _call(beta, method, API[:-1] + re.sub(r"\{id\}", str(NO_SUCH_ID), path), body_for(method, path))
            assert (missing.status_code, missing.json()) == (404, answer.json()), f"{method} {path}: {text[:300]}"
        else:  # named by a string: a 404, or what an org without any data is told
            assert answer.status_code in (200, 404), f"{method} {path} answered beta {answer.status_code}: {text[:300]}"
            if answer.status_code == 200:
                empty = _call(gamma, method, url, body_for(method, path))
                assert normalised(answer, BETA) == normalised(empty, GAMMA), f"{method} {path} differs for beta"
        checked.append((method, path))
    assert len(checked) == len(object_operations)

    after = {url: normalised(alpha.get(API[:-1] + url)) for url in object_reads}
    assert after == before, "another org's token changed alpha's objects"


def test_lists_and_summaries_for_another_org_hold_none_of_its_data(tenants):
    seeded, clients = tenants
    alpha, beta, gamma = clients[ALPHA], clients[BETA], clients[GAMMA]
    reads = [p.removeprefix(API[:-1]) for m, p in schema_operations()
             if m == "GET" and not re.search(r"\{[^}]+\}", p)]
    assert len(reads) >= 15, reads
    telling = []  # the reads where alpha's answer differs from an empty org's: where a leak would show
    for path in reads:
        url = API[:-1] + path
        if normalised(alpha.get(url), ALPHA) != normalised(gamma.get(url), GAMMA):
            telling.append(path)
        for query in ("", f"?org={ALPHA}"):
            answer = beta.get(url + query)
            text = answer.content.decode()
            assert MARK not in text and ALPHA not in text, f"GET {path}{query} showed beta alpha's data: {text[:500]}"
            if path in LISTS:
                ids = {row["id"] for row in answer.json()["results"]}
                assert seeded[LISTS[path]] not in ids, f"GET {path}{query} listed alpha's object"
            if path not in OWN_TOKEN_READS and not PLATFORM_WIDE.search(path):
                empty = gamma.get(url + query)
                assert answer.status_code == empty.status_code, f"GET {path}{query}: {answer.status_code}"
                assert normalised(answer, BETA) == normalised(empty, GAMMA), f"GET {path}{query} differs for beta"
    assert set(reads) - set(telling) <= SILENT_READS, f"alpha's data shows in only {telling}: add seed data"
