"""Schemathesis hooks for tests/integration/test_api_contract.py: cross-field rules OpenAPI cannot state.

Loaded by the schemathesis CLI (``SCHEMATHESIS_HOOKS=tests.integration.schemathesis_hooks``), not by pytest.
They only *teach the generator*: a case whose query (or body) was generated as schema-valid is adjusted so
that it also respects the rules below, which API.md fixes but a JSON Schema cannot express (they relate two
fields, or a field to the clock or to the caller). Negative parts are left alone, no check is disabled, no
expected status is widened, no operation is skipped. Anything a schema *can* say (a minimum, a maximum, an
enum, a pattern) belongs in the schema, not here.

Environment (set by the test): ``CONTRACT_ORG_SLUG`` (the token's org), ``ANALYTICS_DB_RETENTION_DAYS``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import schemathesis
from schemathesis.core import NOT_SET
from schemathesis.core.parameters import ParameterLocation

# --- Windows (API.md, Conventions: Windows) -----------------------------------------------------------
#
# "hours=N or days=N (rolling, ending now), or start= and end=; mixing forms → 400." The three forms are
# separate optional parameters, so a generator that fills each one independently mixes them most of the time.
WINDOW_FORMS = (("hours",), ("days",), ("start", "end"))
WINDOW_PARAMETERS = {name for form in WINDOW_FORMS for name in form}
# analytics/platform/windows.py MAX_WINDOW: a start/end window spans at most 3660 days. A limit on the
# *difference* of two parameters: not expressible in OpenAPI.
MAX_SPAN = timedelta(days=3660)

# --- Time series (API.md, Metrics: GET metrics/{name}/time-series) ------------------------------------
#
# One point per bucket, and at most MAX_POINTS of them (analytics/services/metrics_query.py MAX_POINTS; the view
# answers 400 naming `interval`): a bound on window ÷ interval, two parameters. GET skills/{id}/trend has the
# same limit.
MAX_POINTS = 20_000
# path suffix → (default interval, {interval: seconds})
POINT_LIMITED: dict[str, tuple[str, dict[str, int]]] = {
    "/time-series": ("1h", {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400, "1w": 604800}),
    "/trend": ("hour", {"hour": 3600, "day": 86400}),
}

# --- Events (API.md, Metrics and Skills: `timestamp`) ---------------------------------------------------
#
# "timestamp (optional; now if absent; rejected if more than 5 minutes in the future or older than
# retention)": a bound relative to the server's clock, which a schema cannot state.
FUTURE_LIMIT = timedelta(minutes=5)
SAFETY = timedelta(minutes=1)  # the request reaches the server a little after the hook ran


def _present(query: dict, name: str) -> bool:
    return query.get(name) is not None  # an empty value is a value: the server checks it


def _parse(value) -> datetime | None:
    """The moment a date-time parameter names, as the server reads it (naive is UTC); None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None  # an RFC 3339 form the server cannot read is the server's bug: leave it to fail
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _focus(case) -> str | None:
    """The parameter a coverage-phase case is about (its boundary value must stay in the request)."""
    data = case.meta.phase.data if case.meta is not None else None
    return getattr(data, "parameter", None)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < float("inf") else None


def _window_span(query: dict, now: datetime) -> timedelta | None:
    """How long the window of a (taught) query is; None when the server will reject it anyway or it is default."""
    try:
        if _present(query, "hours"):
            hours = _number(query["hours"])
            return timedelta(hours=hours) if hours is not None else None
        if _present(query, "days"):
            days = _number(query["days"])
            return timedelta(days=days) if days is not None else None
        if _present(query, "start"):
            start = _parse(query["start"])
            end = _parse(query["end"]) if _present(query, "end") else now
            return end - start if start is not None and end is not None else None
    except OverflowError:
        return None
    return None


def teach_points(query: dict, path: str, focus: str | None = None, now: datetime | None = None) -> dict:
    """Rule 8: window ÷ interval gives at most MAX_POINTS buckets."""
    limited = next((spec for suffix, spec in POINT_LIMITED.items() if path.endswith(suffix)), None)
    if limited is None:
        return query
    now = now or datetime.now(UTC)
    span = _window_span(query, now)
    default, intervals = limited
    interval = query.get("interval") if _present(query, "interval") else default
    if span is None or interval not in intervals:
        return query
    window = span

    def fits(seconds: int) -> bool:
        return window.total_seconds() <= (MAX_POINTS - 1) * seconds  # +1: buckets are aligned, the first is partial

    if fits(intervals[interval]):
        return query
    query = dict(query)
    wider = next((name for name, seconds in sorted(intervals.items(), key=lambda kv: kv[1]) if fits(seconds)), None)
    if focus != "interval" and wider is not None:
        query["interval"] = wider  # keep the window under test; take the finest interval that fits it
        return query
    limit = timedelta(seconds=(MAX_POINTS - 1) * intervals[interval])  # keep the interval; shorten the window
    if _present(query, "hours"):
        query["hours"] = str(int(limit.total_seconds() // 3600))
    elif _present(query, "days"):
        query["days"] = str(int(limit.total_seconds() // 86400))
    else:
        end = (_parse(query["end"]) if _present(query, "end") else None) or now
        query["start"] = _format(end - limit)
    return query


def teach_window(query: dict, focus: str | None = None, now: datetime | None = None) -> dict:
    """``query`` with at most one window form, and a start/end pair the server can accept."""
    if not WINDOW_PARAMETERS & set(query):
        return query
    query = dict(query)
    now = now or datetime.now(UTC)
    forms = [form for form in WINDOW_FORMS if any(_present(query, name) for name in form)]
    if len(forms) > 1:
        # Rule 1: one form only. Keep the form of the parameter under test (coverage phase), else the
        # first present in the order hours, days, start/end (a pure function of the case: reproducible).
        keep = next((form for form in forms if focus in form), forms[0])
        for form in forms:
            if form is not keep:
                for name in form:
                    query.pop(name, None)
    if not (_present(query, "start") or _present(query, "end")):
        return query
    start, end = _parse(query.get("start")), _parse(query.get("end"))
    if _present(query, "end") and not _present(query, "start"):
        # Rule 2: "end" needs "start" (the range form is start and end; start alone runs to now).
        if end is None:
            return query
        start = end - timedelta(hours=1) if end > datetime.min.replace(tzinfo=UTC) + timedelta(hours=1) else end
        query["start"] = _format(start)
    if start is None or (end is None and _present(query, "end")):
        return query
    effective_end = end if end is not None else now
    if effective_end <= start:
        # Rule 3: end must be after start (and a lone start must be in the past, since end defaults to now).
        if end is not None and end < start:
            query["start"], query["end"] = query["end"], query["start"]
            start, effective_end = end, start
        else:
            try:
                effective_end = start + timedelta(hours=1)
            except OverflowError:
                start, effective_end = start - timedelta(hours=1), start
                query["start"] = _format(start)
            query["end"] = _format(effective_end)
    if effective_end - start > MAX_SPAN:
        # Rule 4: the span of start..end is at most MAX_SPAN.
        query["start"] = _format(effective_end - timedelta(days=1))
    return query


# --- Leaderboards (API.md, Skills: GET skills/leaderboard) ---------------------------------------------
#
# "A window (usage only) computes the usage board over it": the other boards have their own fixed periods,
# so a window with type rating / most_improved / trending_new is a 400 naming the window parameter. A rule
# relating two parameters.


def teach_leaderboard(query: dict, path: str, focus: str | None = None) -> dict:
    """Rule 9: a window only with the usage board."""
    if not path.endswith("/skills/leaderboard") or query.get("type", "usage") == "usage":
        return query
    if not any(_present(query, name) for name in WINDOW_PARAMETERS):
        return query
    query = dict(query)
    if focus in WINDOW_PARAMETERS or focus is None:
        query["type"] = "usage"  # keep the window under test
    else:
        for name in WINDOW_PARAMETERS:
            query.pop(name, None)  # keep the board type under test
    return query


# --- Bodies of the ingest endpoints -----------------------------------------------------------------------


def _items(body):
    """The items of a batch body: one object, a JSON array, or {"events": [...]} (API.md, Batches)."""
    if isinstance(body, list):
        return [item for item in body if isinstance(item, dict)]
    if isinstance(body, dict):
        events = body.get("events")
        if isinstance(events, list):  # as the server reads it: other keys beside "events" are ignored
            return [item for item in events if isinstance(item, dict)]
        return [body]
    return []


def teach_items(body, now: datetime | None = None):
    """Make every item's ``timestamp`` fall inside the accepted range, and its ``org_id`` the caller's."""
    now = now or datetime.now(UTC)
    retention = timedelta(days=int(os.environ.get("ANALYTICS_DB_RETENTION_DAYS", "90")))
    oldest, newest = now - retention + timedelta(hours=1), now + FUTURE_LIMIT - SAFETY
    org = os.environ.get("CONTRACT_ORG_SLUG")
    for index, item in enumerate(_items(body)):
        if "timestamp" in item:
            moment = _parse(item["timestamp"])
            if moment is not None and not oldest <= moment <= newest:
                # Rule 5: no more than 5 minutes in the future, no older than retention. Spread the replacements
                # over the last hour, deterministically, so a batch does not collapse onto one moment.
                item["timestamp"] = _format(now - SAFETY - timedelta(seconds=(index * 37) % 3600))
        if org and item.get("org_id") not in (None, org):
            # Rule 6 (API.md, Org): "a body field org_id ... must equal the token's org slug (else 400)". The
            # caller's identity is not part of the schema, so the schema cannot name the one accepted value.
            item["org_id"] = org
    return body


def teach_silence(body, now: datetime | None = None):
    """A silence's ``until`` in the future."""
    now = now or datetime.now(UTC)
    if isinstance(body, dict) and "until" in body:
        until = _parse(body["until"])
        if until is not None and until <= now + SAFETY:
            # Rule 7 (API.md, Alerts: POST .../silence {"until"}): a silence ends in the future; a bound relative
            # to the server's clock. Move it an hour past now (its seconds kept, so values still vary).
            body["until"] = _format(now + timedelta(hours=1, seconds=until.second))
    return body


# --- Channels, silences and maintenance windows (docs/notifications.md, API) ------------------------------
#
# "rule ids must be the caller's org's rules": a field related to the caller, which the schema cannot name (the
# ids are the org's), like org_id in rule 6; the test passes its known rule in CONTRACT_RULE_ID. And "until
# after starts_at" (a silence), "ends_at after starts_at" (a one-off window): two fields, or one field and the
# clock or the stored silence (seeded from a minute ago for 30 days).
NOTIFICATION_PATHS = ("/alerts/channels", "/alerts/silences", "/alerts/maintenance-windows")
SEEDED_SILENCE_DAYS = 29  # the seeded silence runs 30 days from the seeding


def teach_known_rules(body):
    """Rule 10: ``rule`` and ``rules`` name the caller's org's rule."""
    rule = os.environ.get("CONTRACT_RULE_ID")
    if not rule or not isinstance(body, dict):
        return body
    if isinstance(body.get("rule"), int | float) and not isinstance(body["rule"], bool):
        body["rule"] = int(rule)
    if isinstance(body.get("rules"), list) and body["rules"]:
        body["rules"] = [int(rule)]
    return body


def teach_order(body, start: str, end: str, method: str, now: datetime | None = None):
    """Rule 11: ``end`` after ``start`` (after now, for a silence's until without a start)."""
    if not isinstance(body, dict):
        return body
    now = now or datetime.now(UTC)
    begin, finish = _parse(body.get(start)), _parse(body.get(end))
    if end == "until" and finish is not None and begin is None and finish <= now + SAFETY:
        body[end] = _format(now + timedelta(hours=1, seconds=finish.second))  # after the default (now) or stored start
    elif begin is not None and finish is not None and finish <= begin:
        try:
            body[end] = _format(begin + timedelta(hours=1))
        except OverflowError:
            body[start] = _format(finish - timedelta(hours=1))
    elif end == "until" and method == "PATCH" and begin is not None and finish is None \
            and begin >= now + timedelta(days=SEEDED_SILENCE_DAYS):
        try:
            body[end] = _format(begin + timedelta(hours=1))  # the stored until ends before this start
        except OverflowError:
            body[start] = _format(now)
    return body


def teach_notifications(case):
    path, method = case.operation.path, case.method.upper()
    if method not in ("POST", "PATCH") or not any(part in path for part in NOTIFICATION_PATHS):
        return
    case.body = teach_known_rules(case.body)
    try:
        if "/alerts/silences" in path:
            case.body = teach_order(case.body, "starts_at", "until", method)
        elif "/alerts/maintenance-windows" in path:
            case.body = teach_order(case.body, "starts_at", "ends_at", method)
    except OverflowError:  # a moment at the edge of the calendar: left as generated
        pass


# --- Batch tracking (docs/activity.md: POST batch-track) --------------------------------------------------
#
# "end needs start; end after start; at most 1,000 periods; start no older than the retention period, end no
# later than the end of the current period": two fields, or a field and the clock.
PERIOD_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1),
                 "month": timedelta(days=28)}


def teach_batch_track(body, now: datetime | None = None):
    """Rule 12: a range of periods the server computes (every bound above); a generated one is moved into it."""
    if not isinstance(body, dict):
        return body
    now = now or datetime.now(UTC)
    length = PERIOD_LENGTH.get(body.get("period_type", "day"), timedelta(days=1))
    retention = timedelta(days=int(os.environ.get("ANALYTICS_DB_RETENTION_DAYS", "90")))
    begin, finish = _parse(body.get("start")), _parse(body.get("end"))
    if finish is not None and begin is None:
        body.pop("end")  # end needs start; without both, the current period
        finish = None
    if begin is not None and not now - retention + timedelta(days=31) <= begin <= now - timedelta(hours=2):
        begin = now - timedelta(days=1, seconds=begin.second)  # its seconds kept, so values still vary
        body["start"] = _format(begin)
    if begin is not None and finish is not None and not begin < finish <= min(now, begin + 900 * length):
        body["end"] = _format(min(now, begin + length))
    return body


# --- Rule previews (docs/alerting.md, Preview: POST alerts/rules/preview) ----------------------------------
#
# "compare_to: the id of the saved rule the proposal would change", a rule of the caller's org: like rule 10, a
# field related to the caller, which the schema cannot name.


def teach_preview(body):
    """Rule 13: ``compare_to`` names the caller's org's rule."""
    rule = os.environ.get("CONTRACT_RULE_ID")
    if rule and isinstance(body, dict) and isinstance(body.get("compare_to"), int | float) \
            and not isinstance(body["compare_to"], bool):
        body["compare_to"] = int(rule)
    return body


def _is_negative(case, location: ParameterLocation) -> bool:
    meta = case.meta
    return meta is None or meta.is_negative_at(location)


@schemathesis.hook
def map_case(context, case):
    """Applied in every phase that generates (coverage, fuzzing, stateful); see the module's docstring."""
    if isinstance(case.query, dict) and case.query and not _is_negative(case, ParameterLocation.QUERY):
        focus, path = _focus(case), case.operation.path
        taught = teach_leaderboard(teach_points(teach_window(case.query, focus=focus), path, focus=focus), path,
                                   focus=focus)
        if taught != case.query:
            case.query = taught
    if case.method.upper() == "POST" and case.body is not NOT_SET and not _is_negative(case, ParameterLocation.BODY):
        case.body = teach_items(case.body)
        if case.operation.path.endswith("/silence"):
            case.body = teach_silence(case.body)
    if case.body is not NOT_SET and not _is_negative(case, ParameterLocation.BODY):
        teach_notifications(case)
        if case.operation.path.endswith("/batch-track"):
            case.body = teach_batch_track(case.body)
        if case.operation.path.endswith("/alerts/rules/preview"):
            case.body = teach_preview(case.body)
    return case
