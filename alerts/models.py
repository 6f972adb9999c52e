"""Alert rules, their per-group evaluation state, incidents, their timeline, and silences.

The state rules live next to the data (like healthchecks' ``Check``):

- ``AlertRule.is_breaching(value)`` — the condition, with the stated ``eq`` tolerance;
- ``AlertRuleGroupState.step(rule, value, has_data, now)`` — one evaluation of one group moving
  inactive → pending → firing → resolved, timed from stored timestamps, never by counting evaluations;
- ``AlertIncident.move_to(status, ...)`` — the incident workflow; an illegal move raises ``IllegalTransition``.

Services in ``alerts.services`` persist what these decide, under ``transaction.atomic`` with row locks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics.models import Organization
from analytics.services.metrics_query import AGGREGATES

# ``eq`` holds when |value - threshold| <= EQ_RELATIVE_TOLERANCE * max(1, |threshold|): an absolute
# tolerance of 1e-9 near zero, a relative one for large thresholds. Floats that went through SQL
# aggregates rarely compare equal exactly.
EQ_RELATIVE_TOLERANCE = 1e-9

MIN_WINDOW_SECONDS = 60
MAX_WINDOW_SECONDS = 30 * 86400
MAX_DURATION_SECONDS = 30 * 86400
MAX_GROUP_BY = 5
MAX_TAGS = 20
MAX_LABELS = 20
TAG_KEY_MAX, TAG_VALUE_MAX = 64, 256

# Built-in sources: reserved metric names whose values do not come from metric events (API.md, Alerts).
SKILL_SUCCESS_RATE = "skill.success_rate"
SKILL_P95_LATENCY = "skill.p95_latency_ms"
SKILL_HEALTH_SCORE = "skill.health_score"
# 1 when the skill's newest version is significantly worse than the previous one, else 0 (docs/skill-versions.md).
SKILL_VERSION_REGRESSION = "skill.version_regression"
SKILL_SOURCES = (SKILL_SUCCESS_RATE, SKILL_P95_LATENCY, SKILL_HEALTH_SCORE, SKILL_VERSION_REGRESSION)
SERVICE_HEALTH = "service.health"
BUILT_IN_SOURCES = {**dict.fromkeys(SKILL_SOURCES, "skill_id"), SERVICE_HEALTH: "service"}

AGGREGATIONS = AGGREGATES  # what a rule may ask of a metric: the query layer's aggregates


class Operator(models.TextChoices):
    GT = "gt", "> (gt)"
    GTE = "gte", "≥ (gte)"
    LT = "lt", "< (lt)"
    LTE = "lte", "≤ (lte)"
    EQ = "eq", "= (eq, within 1e-9 relative)"


OPERATOR_SYMBOLS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "eq": "="}


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


class NoData(models.TextChoices):
    OK = "ok", "ok: no data is not breaching"
    ALERTING = "alerting", "alerting: no data is breaching"
    KEEP = "keep", "keep: leave the state as it is"


def group_key(group: dict) -> str:
    """One string per group's tag values, whatever the key order (``{}`` for a rule without group_by)."""
    return json.dumps(group, sort_keys=True, separators=(",", ":"))


def breaches(operator: str, value: float, threshold: float) -> bool:
    if operator == Operator.GT:
        return value > threshold
    if operator == Operator.GTE:
        return value >= threshold
    if operator == Operator.LT:
        return value < threshold
    if operator == Operator.LTE:
        return value <= threshold
    if operator == Operator.EQ:
        return abs(value - threshold) <= EQ_RELATIVE_TOLERANCE * max(1.0, abs(threshold))
    raise ValueError(f"unknown operator {operator!r}")


# --- Validation shared by the admin form and the API serializer --------------------------


def _string_map(field: str, value, limit: int) -> list[str]:
    if not isinstance(value, dict):
        return [f"{field} must be an object of string → string."]
    problems = []
    if len(value) > limit:
        problems.append(f"At most {limit} entries.")
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > TAG_KEY_MAX:
            problems.append(f"Key {key!r} must be a string of 1-{TAG_KEY_MAX} characters.")
        if not isinstance(item, str) or len(item) > TAG_VALUE_MAX:
            problems.append(f"Value of {key!r} must be a string of at most {TAG_VALUE_MAX} characters.")
    return problems


def rule_problems(*, metric_name, tags, group_by, labels, threshold) -> dict[str, list[str]]:
    """{field: [message]} for what field types alone do not catch."""
    problems: dict[str, list[str]] = {}

    def add(field, message):
        problems.setdefault(field, []).append(message)

    if threshold is not None and (isinstance(threshold, bool) or not math.isfinite(threshold)):
        add("threshold", "Must be a finite number.")
    if metric_name is not None and (not metric_name.strip() or not metric_name.isprintable()):
        add("metric_name", "Must be printable and not blank.")
    for message in _string_map("tags", tags, MAX_TAGS):
        add("tags", message)
    for message in _string_map("labels", labels, MAX_LABELS):
        add("labels", message)
    if not isinstance(group_by, list) or not all(isinstance(k, str) and 0 < len(k) <= TAG_KEY_MAX for k in group_by):
        add("group_by", f"Must be a list of tag keys (strings of 1-{TAG_KEY_MAX} characters).")
    elif len(group_by) > MAX_GROUP_BY or len(set(group_by)) != len(group_by):
        add("group_by", f"At most {MAX_GROUP_BY} distinct tag keys.")
    source_tag = BUILT_IN_SOURCES.get(metric_name)
    if source_tag and "tags" not in problems and "group_by" not in problems:
        if set(tags) - {source_tag}:
            add("tags", f"{metric_name} takes only the tag {source_tag!r}.")
        if set(group_by) - {source_tag}:
            add("group_by", f"{metric_name} can be grouped only by {source_tag!r}.")
        if metric_name == SKILL_HEALTH_SCORE and source_tag not in tags and source_tag not in group_by:
            add("tags", f"{SKILL_HEALTH_SCORE} needs the tag skill_id, or group_by [\"skill_id\"].")
    return problems


# --- Rules ------------------------------------------------------------------------------


class AlertRule(models.Model):
    """What to watch, the condition, and how long it must hold. ``org`` null: a platform rule (staff only)."""

    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            help_text="Blank: a platform rule, visible to staff only.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    metric_name = models.CharField(
        max_length=200,
        help_text="A metric of the query layer, or a built-in source: skill.success_rate, skill.p95_latency_ms, "
                  "skill.health_score (tag skill_id), service.health (tag service).",
    )
    aggregation = models.CharField(max_length=8, choices=[(a, a) for a in AGGREGATIONS], default="avg",
                                   help_text="Ignored by built-in sources, which define their value.")
    window_seconds = models.PositiveIntegerField(default=300)
    tags = models.JSONField(default=dict, blank=True, help_text='Tag filters, ANDed: {"key": "value"}.')
    group_by = models.JSONField(default=list, blank=True, help_text='Tag keys; one incident per group: ["host"].')
    condition_operator = models.CharField(max_length=3, choices=Operator.choices)
    threshold = models.FloatField()
    duration_seconds = models.PositiveIntegerField(
        default=0, help_text="The condition must hold this long before the rule fires (0: at once)."
    )
    keep_firing_seconds = models.PositiveIntegerField(
        default=0, help_text="Once the condition clears, keep firing this long before resolving."
    )
    reopen_after_seconds = models.PositiveIntegerField(
        default=0, help_text="After a group resolves, a new incident of that group opens no sooner than this "
                             "(0: as soon as it fires again). A value hovering at the threshold pages once per "
                             "period, not at every evaluation.",
    )
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    no_data = models.CharField(max_length=8, choices=NoData.choices, default=NoData.OK)
    labels = models.JSONField(default=dict, blank=True, help_text="Free labels for routing and notifications.")
    enabled = models.BooleanField(default=True)

    trigger_count = models.PositiveIntegerField(default=0, editable=False)
    last_triggered_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The error state: the rule's query failed on its last evaluation (its groups keep their state).
    last_error = models.TextField(blank=True, editable=False)
    error_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            # Coalesce: platform rules (org NULL) share one name space, on SQLite and PostgreSQL alike.
            models.UniqueConstraint(Coalesce(F("org"), Value(0)), F("name"), name="alerts_rule_unique_name"),
        ]
        indexes = [models.Index(fields=["enabled", "metric_name"], name="alerts_rule_enabled_metric")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        problems = rule_problems(metric_name=self.metric_name, tags=self.tags, group_by=self.group_by,
                                 labels=self.labels, threshold=self.threshold)
        if self.window_seconds is not None and not MIN_WINDOW_SECONDS <= self.window_seconds <= MAX_WINDOW_SECONDS:
            problems.setdefault("window_seconds", []).append(
                f"Must be from {MIN_WINDOW_SECONDS} to {MAX_WINDOW_SECONDS} seconds.")
        for field in ("duration_seconds", "keep_firing_seconds", "reopen_after_seconds"):
            value = getattr(self, field)
            if value is not None and value > MAX_DURATION_SECONDS:
                problems.setdefault(field, []).append(f"At most {MAX_DURATION_SECONDS} seconds.")
        if problems:
            raise ValidationError(problems)

    @property
    def condition(self) -> str:
        what = self.metric_name if self.is_built_in else f"{self.aggregation}({self.metric_name})"
        return f"{what} {OPERATOR_SYMBOLS.get(self.condition_operator, '?')} {self.threshold:g}"

    @property
    def is_built_in(self) -> bool:
        return self.metric_name in BUILT_IN_SOURCES

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.duration_seconds)

    @property
    def keep_firing(self) -> timedelta:
        return timedelta(seconds=self.keep_firing_seconds)

    @property
    def reopen_after(self) -> timedelta:
        return timedelta(seconds=self.reopen_after_seconds)

    def is_breaching(self, value: float) -> bool:
        return breaches(self.condition_operator, value, self.threshold)

    def state(self, group_states=None) -> str:
        """``error``, else the most urgent state of its groups: firing, pending, or inactive."""
        if self.last_error:
            return RULE_ERROR
        statuses = {s.status for s in (self.group_states.all() if group_states is None else group_states)}
        for status in (GroupStatus.FIRING, GroupStatus.PENDING):
            if status in statuses:
                return status
        return GroupStatus.INACTIVE


class GroupStatus(models.TextChoices):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"  # quiet like inactive; it fired before and cleared (or was resolved by hand)


QUIET = (GroupStatus.INACTIVE, GroupStatus.RESOLVED)
# A rule's state besides its groups' statuses: its query failed on the last evaluation.
RULE_ERROR = "error"


@dataclass(frozen=True)
class Move:
    """What one evaluation of a group changed: an event kind and the statuses either side."""

    kind: str
    from_status: str
    to_status: str
    note: str = ""
    opens_incident: bool = False
    resolves_incident: bool = False


class AlertRuleGroupState(models.Model):
    """Where one group of a rule stands. A row exists once the group has breached at least once."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="group_states")
    group_key = models.CharField(max_length=1700)
    group = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=GroupStatus.choices, default=GroupStatus.INACTIVE)
    pending_since = models.DateTimeField(null=True, blank=True)
    firing_since = models.DateTimeField(null=True, blank=True)
    # Set when the condition clears while firing: the group resolves at this time unless it breaches again.
    keep_firing_until = models.DateTimeField(null=True, blank=True)
    # When the group last resolved (by its condition or by hand): the rule's reopen_after counts from here.
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    incident = models.ForeignKey("AlertIncident", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "rule group state"
        constraints = [models.UniqueConstraint(fields=["rule", "group_key"], name="alerts_state_unique_group")]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.group_key}: {self.status}"

    def step(self, rule: AlertRule, value: float | None, has_data: bool, now: datetime, *,
             no_data: str | None = None) -> Move | None:
        """Apply one evaluation to this state (in memory); the move made, or None when nothing moved.

        ``no_data`` overrides the rule's policy (the evaluator clears a grouped rule's whole-rule
        no-data group with ``ok`` once data is back).
        """
        if not has_data:
            no_data = no_data or rule.no_data
            if no_data == NoData.KEEP:
                return None
            breaching = no_data == NoData.ALERTING
        elif value is None:
            raise ValueError("has_data is true but there is no value")
        else:
            breaching = rule.is_breaching(value)
        status = self.status
        if breaching:
            if status in QUIET:
                self.pending_since = now
                fires_at = self.fires_at(rule)
                if fires_at <= now:
                    return self._fire(now, status)
                self.status = GroupStatus.PENDING
                note = f"fires at {fires_at.isoformat()} if it holds"
                if fires_at > now + rule.duration:
                    assert self.resolved_at is not None  # fires_at is later than the duration only after a resolve
                    note += (f" (resolved at {self.resolved_at.isoformat()}: no new incident within "
                             f"reopen_after_seconds={rule.reopen_after_seconds})")
                return Move("pending", status, GroupStatus.PENDING, note=note)
            if status == GroupStatus.PENDING:
                if now >= self.fires_at(rule):
                    return self._fire(now, status)
                return None
            if self.keep_firing_until is not None:
                self.keep_firing_until = None
                return Move("breaching", status, status, note="breaching again: keep-firing cancelled")
            return None
        if status == GroupStatus.PENDING:
            self.status, self.pending_since = GroupStatus.INACTIVE, None
            return Move("recovered", status, GroupStatus.INACTIVE, note="cleared before the duration passed")
        if status == GroupStatus.FIRING:
            if rule.keep_firing_seconds and self.keep_firing_until is None:
                self.keep_firing_until = now + rule.keep_firing
                return Move("keep_firing", status, status,
                            note=f"condition cleared; keeps firing until {self.keep_firing_until.isoformat()}")
            if self.keep_firing_until is not None and now < self.keep_firing_until:
                return None
            self.resolve(now)
            return Move("resolved", status, GroupStatus.RESOLVED, note="condition cleared", resolves_incident=True)
        return None

    def fires_at(self, rule: AlertRule) -> datetime:
        """When a breach that began at ``pending_since`` fires: after the rule's duration, and no sooner than
        ``reopen_after_seconds`` after the group last resolved (flapping control)."""
        assert self.pending_since is not None  # set whenever a breach begins (step)
        fires_at = self.pending_since + rule.duration
        if self.resolved_at is not None and rule.reopen_after_seconds:
            fires_at = max(fires_at, self.resolved_at + rule.reopen_after)
        return fires_at

    def _fire(self, now: datetime, from_status: str) -> Move:
        self.status, self.firing_since, self.keep_firing_until = GroupStatus.FIRING, now, None
        return Move("firing", from_status, GroupStatus.FIRING, opens_incident=True)

    def resolve(self, now: datetime) -> None:
        """Back to quiet: a breach from here waits for the whole duration again, and for the rule's
        reopen_after from ``now``."""
        self.status, self.resolved_at = GroupStatus.RESOLVED, now
        self.pending_since = self.firing_since = self.keep_firing_until = None
        self.incident = None


# --- Incidents ----------------------------------------------------------------------------


class IncidentStatus(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"
    RESOLVED = "resolved"


# API.md, Alerts: the legal moves. Repeating the current status is never one.
# Keyed by str: an incident's status is read back from the database as a plain string.
ALLOWED_MOVES: dict[str, set[str]] = {
    IncidentStatus.OPEN: {IncidentStatus.ACKNOWLEDGED, IncidentStatus.SILENCED, IncidentStatus.RESOLVED},
    IncidentStatus.ACKNOWLEDGED: {IncidentStatus.SILENCED, IncidentStatus.RESOLVED},
    IncidentStatus.SILENCED: {IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED},
    IncidentStatus.RESOLVED: set(),
}


class IllegalTransition(Exception):
    """An incident cannot make this move from its current status (API: 409; admin: a message)."""

    def __init__(self, incident: AlertIncident, to_status: str):
        self.incident, self.to_status = incident, to_status
        super().__init__(f"Incident {incident.pk} is {incident.status}; it cannot become {to_status}.")


class AlertIncidentQuerySet(models.QuerySet):
    def unresolved(self):
        return self.exclude(status=IncidentStatus.RESOLVED)

    def with_severity_rank(self):
        return self.annotate(severity_rank=models.Case(
            *[models.When(severity=name, then=Value(rank)) for name, rank in SEVERITY_RANK.items()],
            default=Value(0), output_field=models.IntegerField(),
        ))

    def most_urgent_first(self):
        return self.with_severity_rank().order_by("-severity_rank", "-triggered_at", "-id")


class AlertIncident(models.Model):
    """A rule's group firing. At most one unresolved incident per rule and group (a database constraint)."""

    # The rule may be deleted later; the incident and its timeline stay, under the rule's name.
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents")
    rule_name = models.CharField(max_length=200)
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    group_key = models.CharField(max_length=1700, default="{}")
    group = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    # The status a silence returns to when its time passes.
    status_before_silence = models.CharField(max_length=12, choices=IncidentStatus.choices, blank=True)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    value = models.FloatField(null=True, blank=True, help_text="The value that made it fire (null: no data).")
    threshold = models.FloatField()
    condition = models.CharField(max_length=300, blank=True)
    triggered_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True, help_text="Blank: resolved by the evaluator.")
    silenced_until = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)

    objects = AlertIncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-triggered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "group_key"], condition=~models.Q(status=IncidentStatus.RESOLVED),
                name="alerts_one_unresolved_incident",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "triggered_at"], name="alerts_incident_status_time"),
            models.Index(fields=["org", "status"], name="alerts_incident_org_status"),
        ]

    def __str__(self) -> str:
        group = ", ".join(f"{k}={v}" for k, v in sorted(self.group.items()))
        return f"#{self.pk} {self.rule_name}" + (f" [{group}]" if group else "")

    @property
    def is_resolved(self) -> bool:
        return self.status == IncidentStatus.RESOLVED

    def move_to(self, status: str, *, actor: str, note: str, now: datetime, until: datetime | None = None,
                kind: str | None = None) -> IncidentEvent:
        """Make a workflow move in memory and return its (unsaved) timeline row; IllegalTransition if not allowed."""
        if status not in ALLOWED_MOVES[self.status]:
            raise IllegalTransition(self, status)
        before = self.status
        if status == IncidentStatus.SILENCED:
            self.status_before_silence = before
            self.silenced_until = until
        else:
            self.silenced_until = None
            self.status_before_silence = ""
        if status == IncidentStatus.ACKNOWLEDGED:
            self.acknowledged_at, self.acknowledged_by = now, actor
        if status == IncidentStatus.RESOLVED:
            self.resolved_at, self.resolved_by = now, actor
        self.status = status
        if note:
            self.notes = (self.notes + "\n" if self.notes else "") + f"{status} by {actor or 'evaluator'}: {note}"
        return self.event(kind or status, before, status, actor=actor, note=note, at=now)

    def lift_silence(self, now: datetime) -> IncidentEvent:
        """The silence's time passed: back to the status it had before."""
        before = self.status
        self.status = self.status_before_silence or IncidentStatus.OPEN
        self.status_before_silence, self.silenced_until = "", None
        return self.event("unsilenced", before, self.status, note="silence expired", at=now)

    def event(self, kind: str, from_status: str, to_status: str, *, at: datetime, actor: str = "", note: str = "",
              value: float | None = None) -> IncidentEvent:
        return IncidentEvent(rule_id=self.rule_id, group_key=self.group_key, incident=self, kind=kind,
                             from_status=from_status, to_status=to_status, value=value, threshold=self.threshold,
                             actor=actor, note=note, at=at)


class IncidentEvent(models.Model):
    """The timeline: every move of a rule's group and every human action on an incident, in order.

    Evaluator moves before an incident opens (pending) are linked to the incident when it opens, so
    its timeline answers "why did this fire". ``claimed_at`` lets a notifier take each row exactly once
    with ``claim()`` (a conditional UPDATE), like ``monitoring.ServiceTransition``.
    """

    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    group_key = models.CharField(max_length=1700, default="{}")
    incident = models.ForeignKey(AlertIncident, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="events")
    # Evaluator moves: pending, recovered, firing, keep_firing, breaching, resolved; rule errors: error,
    # error_cleared; human actions: acknowledged, silenced, resolved; silence expiry: unsilenced.
    kind = models.CharField(max_length=16)
    # Group statuses (inactive/pending/firing/resolved) for evaluator moves, incident statuses for actions.
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    actor = models.CharField(max_length=200, blank=True, help_text="Blank: the evaluator.")
    note = models.TextField(blank=True)
    at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["incident", "at"], name="alerts_event_incident_time"),
            models.Index(fields=["rule", "group_key", "at"], name="alerts_event_rule_group_time"),
            models.Index(fields=["claimed_at", "at"], name="alerts_event_claim"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}→{self.to_status} at {self.at:%Y-%m-%d %H:%M:%S}"

    def claim(self, now: datetime | None = None) -> bool:
        """True for exactly one of several consumers claiming the same row."""
        now = now or timezone.now()
        claimed = IncidentEvent.objects.filter(pk=self.pk, claimed_at__isnull=True).update(claimed_at=now)
        if claimed:
            self.claimed_at = now
        return bool(claimed)


class Silence(models.Model):
    """Quiet until a time: one incident's (made by its Silence step), or every incident a general silence
    matches — by rule, by severity and by labels (equality matchers on the incident's group and the rule's
    labels, all of them). Silences hold back notifications, never the recording of incidents; a resolve
    whose firing was sent is sent anyway."""

    incident = models.ForeignKey(AlertIncident, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="silences", help_text="Empty: a general silence (matchers below).")
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            help_text="Empty: incidents of every org.")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="silences",
                             help_text="Only this rule's incidents.")
    severity = models.CharField(max_length=8, choices=Severity.choices, blank=True,
                                help_text="Only incidents of this severity.")
    matchers = models.JSONField(default=dict, blank=True, help_text=(
        'Labels that must all be equal, among the incident\'s group and its rule\'s labels: {"host": "h1"}.'))
    starts_at = models.DateTimeField()
    until = models.DateTimeField()
    created_by = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True, help_text="Why (shown on the timelines of the incidents it holds back).")
    # Set when the silence ends before ``until``: the incident was acknowledged or resolved meanwhile.
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at", "-id"]

    def __str__(self) -> str:
        scope = f" of incident {self.incident_id}" if self.incident_id else f" #{self.pk}" if self.pk else ""
        return f"silence{scope} until {self.until:%Y-%m-%d %H:%M}"

    def clean(self):
        errors = {}
        if self.starts_at and self.until and self.until <= self.starts_at:
            errors["until"] = "Must be after the start."
        if not isinstance(self.matchers, dict) or not all(
                isinstance(key, str) and isinstance(value, str) for key, value in self.matchers.items()):
            errors["matchers"] = 'An object of label to value, e.g. {"host": "h1"}.'
        elif self.incident_id is None and not (self.rule_id or self.severity or self.matchers):
            errors["matchers"] = "Name a rule, a severity or at least one label: a silence of everything is refused."
        if errors:
            raise ValidationError(errors)

    def is_active(self, now: datetime) -> bool:
        return self.ended_at is None and self.starts_at <= now < self.until

    def matches(self, incident: AlertIncident) -> bool:
        """Whether this general silence covers ``incident`` (its time is checked by ``is_active``)."""
        if self.incident_id is not None:
            return self.incident_id == incident.pk
        if self.org_id is not None and self.org_id != incident.org_id:
            return False
        if self.rule_id is not None and self.rule_id != incident.rule_id:
            return False
        if self.severity and self.severity != incident.severity:
            return False
        labels = {**(incident.rule.labels if incident.rule_id and incident.rule else {}), **incident.group}
        return all(labels.get(key) == value for key, value in self.matchers.items())


# Notification channels and the outbox live beside their transports (alerts/notifications/); importing them
# here registers them with the app.
from alerts.notifications.models import MaintenanceWindow, Notification, NotificationChannel  # noqa: E402, F401
