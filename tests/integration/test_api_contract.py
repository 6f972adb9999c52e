"""The live server answers as its OpenAPI schema says: schemathesis, all checks, over every operation.

The issue "One declaration per API contract": ``schemathesis run`` against the live server's schema with all
checks, at least 1,000 generated cases over every operation, with a writing token and with known ids supplied
(a rule, an incident, a token), reports 0 failures.

The test seeds a small org on the test database (tokens and a monitored service through Django, events, skills
and alert rules through the API, incidents by one pass of the evaluator), starts gunicorn on it, fetches
``/api/schema/?format=json`` with the token, and runs the schemathesis CLI with a config file that fixes every
path parameter to a known object. Cross-field rules OpenAPI cannot state are taught to the generator in
``schemathesis_hooks.py`` (each rule documented there); nothing is excluded.

Run alone: ``CI=true .venv/bin/python -m pytest -q -p no:cacheprovider tests/integration/test_api_contract.py``.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.servers import missing_server

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1/analytics/"
ORG = "contract"
SEED = 20261203
MIN_CASES = 1000  # generated test cases over the whole run (the issue's floor)
MIN_EXAMPLES_PER_OPERATION = 40  # fuzzing examples per operation; raised if the operations are few
RUN_TIMEOUT = 270  # seconds for the schemathesis run (the test's budget is pytest's 300 s)
HOOKS = "tests.integration.schemathesis_hooks"

pytestmark = [pytest.mark.servers, pytest.mark.django_db(transaction=True)]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- Seed data ---------------------------------------------------------------------------------------------


def seed_through_django():
    """What only Django code creates: the org, its tokens, a monitored service and its recent checks."""
    from analytics.platform.tenancy import ApiToken, Organization
    from monitoring.models import CheckOutcome, Service

    org = Organization.get_or_create_by_slug(ORG)
    writer, raw = ApiToken.issue(org, name="contract writer")
    spare, _ = ApiToken.issue(org, name="contract spare")  # the one `tokens/{id}` reads and revokes
    service = Service.objects.create(name="contract-db", description="the platform's own database",
                                     service_type=Service.Type.DATABASE, check_kind=Service.CheckKind.DATABASE)
    now = datetime.now(UTC)
    for minutes in range(60, 0, -5):
        ok = minutes != 30  # one failed check, so the SLA has something to count
        service.record(CheckOutcome(ok=ok, response_time_ms=3.0 + minutes / 10 if ok else None,
                                    error="" if ok else "connection refused"),
                       now - timedelta(minutes=minutes))
    return {"token": raw, "writer_id": writer.pk, "spare_token_id": spare.pk, "service": service.name}


class Api:
    def __init__(self, base: str, token: str):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def post(self, path: str, body, expect: int = 201) -> dict:
        response = self.session.post(self.base + API + path, json=body, timeout=30)
        assert response.status_code == expect, f"seeding POST {path}: {response.status_code} {response.text[:2000]}"
        return response.json()


HOSTS = ("h1", "h2", "h3", "h4")  # one incident per host: one for each incident operation


def seed_through_the_api(api: Api) -> dict:
    """Events, skills and rules as a client sends them; then one evaluation opens the incidents."""
    from alerts.models import AlertIncident, AlertRule
    from alerts.services.evaluation import evaluate_rules

    now = datetime.now(UTC)
    events = [{"metric_name": "cpu.usage", "value": 95.0 + i, "metric_type": "gauge", "unit": "%",
               "tags": {"host": host}, "timestamp": _iso(now - timedelta(minutes=1 + i)), "event_id": f"cpu-{host}-{i}"}
              for host in HOSTS for i in range(3)]
    events += [{"metric_name": "cpu.usage", "value": 40.0 + i % 7, "tags": {"host": HOSTS[i % 4]},
                "timestamp": _iso(now - timedelta(hours=2, minutes=7 * i))} for i in range(40)]
    events += [{"metric_name": "request.latency", "value": float(10 + i * 3), "metric_type": "timer", "unit": "ms",
                "tags": {"endpoint": "search"}, "timestamp": _iso(now - timedelta(minutes=3 * i))} for i in range(30)]
    api.post("metrics/batch", {"events": events})
    api.post("metrics/record", {"metric_name": "jobs.done", "value": 1, "metric_type": "counter"})

    executions = [{"skill_id": "parse_json", "success": i % 5 != 0, "latency_ms": 20.0 + i * 4,
                   "user_id": f"user{i % 3}", "org_id": ORG, "skill_version": "1.2.0",
                   "error_type": "" if i % 5 else "ValueError", "timestamp": _iso(now - timedelta(minutes=9 * i))}
                  for i in range(30)]
    executions += [{"skill_id": "fetch_url", "success": True, "latency_ms": 120.0, "user_id": "user1",
                    "timestamp": _iso(now - timedelta(hours=i))} for i in range(5)]
    api.post("skills/executions", executions)
    api.post("skills/ratings", [{"skill_id": "parse_json", "rating": 4 + i % 2, "user_id": f"user{i}"}
                                for i in range(3)])
    api.post("skills/installs", [{"skill_id": "parse_json", "user_id": f"user{i}"} for i in range(2)])

    activity = [{"type": "signup", "user_id": "user1", "timestamp": _iso(now - timedelta(hours=3))},
                {"type": "session", "user_id": "user1", "active_seconds": 600.0},
                {"type": "agent_call", "agent_id": "agent1", "user_id": "user1", "success": True,
                 "response_time_ms": 180.0},
                {"type": "agent_heartbeat", "agent_id": "agent1", "available": True}]
    api.post("events", activity)
    api.post("batch-track", {"period_type": "day"}, expect=200)  # a computation: nothing is created

    rule = {"metric_name": "cpu.usage", "condition_operator": "gt", "threshold": 80.0, "aggregation": "avg",
            "window_seconds": 300, "severity": "critical"}
    firing = api.post("alerts/rules", {**rule, "name": "contract cpu high", "group_by": ["host"]})
    kept = api.post("alerts/rules", {**rule, "name": "contract kept rule", "description": "GET and PATCH"})
    doomed = api.post("alerts/rules", {**rule, "name": "contract doomed rule", "description": "DELETE"})
    evaluate_rules(datetime.now(UTC), rules=AlertRule.objects.filter(pk=firing["id"]))
    incidents = {incident.group.get("host"): incident.pk
                 for incident in AlertIncident.objects.filter(rule_id=firing["id"], status="open")}
    assert set(incidents) == set(HOSTS), f"the evaluator opened {incidents} for {firing}"
    seeded = {"rule_id": kept["id"], "doomed_rule_id": doomed["id"], "incidents": incidents,
              "metric": "cpu.usage", "skill": "parse_json", "user": "user1", "agent": "agent1"}
    return seeded | seed_notifications(api, kept["id"], now)


def seed_notifications(api: Api, rule_id: int, now: datetime) -> dict:
    """A channel, a general silence and a recurring maintenance window for GET and PATCH, and a throw-away
    one of each for DELETE."""
    seeded = {}
    for role in ("kept", "doomed"):
        seeded[f"{role}_channel_id"] = api.post("alerts/channels", {
            "name": f"contract {role} hook", "kind": "webhook", "config": {"url": "https://hooks.example.com/x"},
            "secret": "contract", "rules": [rule_id], "default_for": ["critical"]})["id"]
        # With a severity: a PATCH that clears matchers or rule still leaves it one criterion.
        seeded[f"{role}_silence_id"] = api.post("alerts/silences", {
            "severity": "critical", "rule": rule_id, "matchers": {"host": "h9"},
            "starts_at": _iso(now - timedelta(minutes=1)), "until": _iso(now + timedelta(days=30))})["id"]
        seeded[f"{role}_window_id"] = api.post("alerts/maintenance-windows", {
            "name": f"contract {role} window", "weekdays": [5, 6], "start_time": "03:00",
            "duration_minutes": 60, "timezone": "Europe/Berlin", "rule": rule_id})["id"]
    return seeded


# --- Known values for path parameters ------------------------------------------------------------------


def known_path_values(seed: dict) -> list[tuple[str, str | None, object]]:
    """(path regex, method or None for all, value) — the first match wins; every path parameter needs one."""
    incidents = seed["incidents"]
    return [
        (r"/tokens/\{[^}]+\}$", None, seed["spare_token_id"]),  # never the writing token: DELETE revokes it
        (r"/alerts/rules/\{[^}]+\}$", "DELETE", seed["doomed_rule_id"]),  # GET/PATCH keep theirs
        (r"/alerts/rules/\{[^}]+\}$", None, seed["rule_id"]),
        (r"/alerts/rules/\{[^}]+\}/preview$", None, seed["rule_id"]),
        (r"/alerts/channels/\{[^}]+\}$", "DELETE", seed["doomed_channel_id"]),
        (r"/alerts/channels/\{[^}]+\}$", None, seed["kept_channel_id"]),
        (r"/alerts/silences/\{[^}]+\}$", "DELETE", seed["doomed_silence_id"]),
        (r"/alerts/silences/\{[^}]+\}$", None, seed["kept_silence_id"]),
        (r"/alerts/maintenance-windows/\{[^}]+\}$", "DELETE", seed["doomed_window_id"]),
        (r"/alerts/maintenance-windows/\{[^}]+\}$", None, seed["kept_window_id"]),
        (r"/alerts/incidents/\{[^}]+\}/acknowledge$", None, incidents["h2"]),
        (r"/alerts/incidents/\{[^}]+\}/silence$", None, incidents["h3"]),
        (r"/alerts/incidents/\{[^}]+\}/resolve$", None, incidents["h4"]),
        (r"/alerts/incidents/\{[^}]+\}$", None, incidents["h1"]),
        (r"/metrics/\{[^}]+\}/", None, seed["metric"]),
        (r"/skills/\{[^}]+\}", None, seed["skill"]),
        (r"/user/\{[^}]+\}", None, seed["user"]),
        (r"/agent/\{[^}]+\}", None, seed["agent"]),
        (r"/monitoring/(health|sla)/\{[^}]+\}$", None, seed["service"]),
    ]


def operations_of(schema: dict) -> list[tuple[str, str, list[str]]]:
    """(METHOD, path, [path parameter names]) of every operation in the schema."""
    found = []
    for path, item in schema.get("paths", {}).items():
        shared = [p for p in item.get("parameters", []) if p.get("in") == "path"]
        for method, operation in item.items():
            if method not in {"get", "put", "post", "patch", "delete", "head", "options", "trace"}:
                continue
            params = shared + [p for p in operation.get("parameters", []) if p.get("in") == "path"]
            names = sorted({p["name"] for p in params} | set(re.findall(r"\{([^}]+)\}", path)))
            found.append((method.upper(), path, names))
    return found


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def write_config(directory: Path, schema: dict, seed: dict) -> tuple[Path, int, int, list[str]]:
    """schemathesis.toml for this run: (its path, operations, max examples, path parameters without a value)."""
    operations = operations_of(schema)
    examples = max(MIN_EXAMPLES_PER_OPERATION, math.ceil(MIN_CASES / max(1, len(operations))))
    table = known_path_values(seed)
    lines = [
        f"seed = {SEED}",
        # One worker: reproducible with the seed, and clear of CPython 3.11's "AST constructor recursion depth
        # mismatch" (python/cpython#106905), which hypothesis's ast parsing hits from parallel worker threads.
        "workers = 1",
        "continue-on-failure = true",
        # ${...}: schemathesis reads the token from its environment; it is never written to a file.
        'headers = { Authorization = "Bearer ${CONTRACT_TOKEN}" }',
        "",
        "[generation]",
        f"max-examples = {examples}",
        'database = "none"',  # nothing carried over from an earlier run: the run is the same every time
        "",
        "[cache]",
        "enabled = false",
        "",
        "[reports.json]",
        "enabled = true",
        f"path = {_toml(directory / 'report.json')}",
    ]
    missing = []
    for method, path, names in operations:
        values = {}
        for name in names:
            value = next((v for pattern, m, v in table if re.search(pattern, path) and m in (None, method)), None)
            if value is None:
                missing.append(f"{method} {path}: {name}")
            else:
                values[name] = value
        if values:
            params = ", ".join(f"{_toml('path.' + name)} = {_toml(value)}" for name, value in values.items())
            # include-name matches the label "METHOD /path" (include-path with include-method would be an OR).
            lines += ["", "[[operations]]", f"include-name = {_toml(f'{method} {path}')}",
                      f"parameters = {{ {params} }}"]
    config = directory / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    tomllib.loads(config.read_text())  # fail here, not in schemathesis, if the file is not TOML
    return config, len(operations), examples, missing


# --- The report --------------------------------------------------------------------------------------------


def useful_part(output: str, limit: int = 40_000, width: int = 600) -> str:
    """Schemathesis's ERRORS, FAILURES and SUMMARY sections (not its banner, progress, or warnings advice)."""
    starts = [found for found in (output.find(f"= {name} =") for name in ("ERRORS", "FAILURES", "SUMMARY"))
              if found != -1]
    start = output.rfind("\n", 0, min(starts)) + 1 if starts else 0
    lines = []
    for line in output[start:].splitlines():
        if line.strip().startswith("st replay "):
            continue  # the replay cache is disabled
        lines.append(line if len(line) <= width else line[:width] + " [...]")  # long curl bodies
    text = "\n".join(lines)
    if len(text) > limit:
        summary = text.find("= SUMMARY =")
        tail = text[text.rfind("\n", 0, summary):] if summary != -1 else ""
        text = text[: limit - len(tail)] + "\n[... trimmed ...]\n" + tail
    return text


def server_errors(log: str, limit: int = 20) -> str:
    """The server's 500s from its log: one line per (path, exception), with a count."""
    found: dict[tuple[str, str], int] = {}
    path = None
    for line in log.splitlines():
        match = re.search(r"Internal Server Error: (\S+)", line)
        if match:
            path = match.group(1)
        elif path and re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b", line):
            key = (path, line[:300])
            found[key] = found.get(key, 0) + 1
            path = None
    if not found:
        return ""
    rows = sorted(found.items(), key=lambda item: -item[1])[:limit]
    return "\n\nServer errors in the server's log:\n" + "\n".join(f"  {n} x {p}: {e}" for (p, e), n in rows)


def test_the_live_server_keeps_its_openapi_contract(web_server, tmp_path):
    schemathesis = Path(sys.executable).with_name("schemathesis")
    if not schemathesis.exists():
        missing_server("schemathesis is not installed (the dev extra: make venv)")
    seed = seed_through_django()
    retention = os.environ.get("ANALYTICS_DB_RETENTION_DAYS", "90")
    # The schema lets a channel URL be any address, so every address is allowlisted here (tests/test_security_urls.py
    # tests the refusals), and one token sends thousands of requests in a few minutes: no rate limit.
    server = web_server(ANALYTICS_REQUEST_TRACKING="true", ANALYTICS_DB_RETENTION_DAYS=retention,
                        NOTIFICATION_URL_ALLOWLIST="0.0.0.0/0,::/0,localhost", API_THROTTLE_RATE="off")
    seed |= seed_through_the_api(Api(server.url, seed["token"]))

    response = requests.get(f"{server.url}/api/schema/?format=json",
                            headers={"Authorization": f"Bearer {seed['token']}"}, timeout=60)
    assert response.status_code == 200, f"GET /api/schema/: {response.status_code} {response.text[:2000]}"
    schema = response.json()
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    config, operations, examples, missing = write_config(tmp_path, schema, seed)
    assert not missing, (
        "path parameters without a known value (seed an object and add it to known_path_values): "
        + "; ".join(missing))

    env = {key: value for key, value in os.environ.items() if not key.startswith("SCHEMATHESIS_")}
    env.update(CONTRACT_TOKEN=seed["token"], CONTRACT_ORG_SLUG=ORG, CONTRACT_RULE_ID=str(seed["rule_id"]),
               ANALYTICS_DB_RETENTION_DAYS=retention,
               SCHEMATHESIS_HOOKS=HOOKS, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
               NO_COLOR="1", COLUMNS="120")
    command = [str(schemathesis), "--config-file", str(config), "run", str(tmp_path / "schema.json"),
               "--url", server.url, "--checks", "all", "--no-color"]
    try:
        run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"schemathesis ran over {RUN_TIMEOUT}s: {str(error.stdout)[-4000:]}")
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.out").write_text(output)

    report_file = tmp_path / "report.json"
    assert report_file.exists(), f"schemathesis wrote no report (exit {run.returncode}):\n{output[-6000:]}"
    report = json.loads(report_file.read_text())
    where = (f"\n(full output: {tmp_path / 'schemathesis.out'}; server log: {server.log}; "
             f"{operations} operations, max-examples {examples}, seed {SEED})")
    # The run was meaningful: every operation tested, the token accepted, every configured id applied.
    assert report["operations"]["tested"] == report["operations"]["total"] == operations, (
        f"not every operation was tested: {report['operations']}\n{useful_part(output)}{where}")
    assert report["test_cases"]["generated"] >= MIN_CASES, f"{report['test_cases']}{where}"
    for warning in ("missing_auth", "unmatched_filter"):
        assert not report["warnings"].get(warning), f"{warning}: {report['warnings'][warning]}{where}"
    assert not report["errors"], f"schemathesis errors: {report['errors']}\n{useful_part(output)}{where}"
    # The contract: 0 failures.
    assert run.returncode == 0, (
        f"schemathesis exit {run.returncode}:\n{useful_part(output)}{server_errors(server.log_tail(10**7))}{where}")
