"""What an alert rule would have done over the last 1-30 days, shown before a change is saved (the rule page's
preview chart; ``POST alerts/rules/preview``, ``GET alerts/rules/{id}/preview``).

    preview_rule(rule, *, days=7, now=None, compare_to=None) -> RulePreview

``rule`` may be unsaved (the proposed settings). Nothing is written: the groups' states are unsaved
``AlertRuleGroupState`` objects stepped in memory by the evaluator's own state machine (``step``: pending,
firing after the duration, keep-firing, resolve, reopen_after, no data), and no incident, timeline event or
notification is made. With ``compare_to`` (the saved rule, when previewing a change) the answer also says how
many incidents that rule would have opened over the same days.

**Steps.** A rule whose values come from a time series (below) is evaluated at the end of every window, as the
evaluator would see it: a 1-minute rule 43,200 times over 30 days (``MAX_SERIES_EVALUATIONS``). One asked per
moment is evaluated every ``step``: its own window, or the smallest multiple of it that keeps the preview to
``MAX_EVALUATIONS`` (1,500) questions — a 5-minute rule every 5 minutes over up to 5 days, every 10 minutes over
7 days, every 30 minutes over 30 days. The moments are multiples of the window (UTC-aligned like the query
layer's buckets; weeks from Mondays) up to the last one at or before ``now``, so the rule's window ending at a
moment is one bucket of a time series. The first evaluation starts from no state, as a new rule would: a breach
already going on then opens its incident at once (or after its duration). A chart gets at most
``MAX_CHART_POINTS`` (1,500) points a group: beyond that, each point stands for consecutive evaluations and
carries the most breaching value among them, so no breach disappears from the chart.

**Values**, through the evaluator's query layer, in one of two ways:

- a metric whose window is one of the time-series intervals (1m, 5m, 15m, 1h, 6h, 1d, 1w), all of whose groups
  carry their ``group_by`` tags: ``metrics_query.time_series`` with ``interval`` = the window and the rule's
  aggregation, once per group over the whole period (in pieces of at most 20,000 buckets); the bucket ending at a
  moment is the evaluator's window ending then;
- anything else (a built-in source, another window length, a group lacking one of its tags): the evaluator's own
  ``Sources.fetch`` at each moment, one question per step.

Where the preview and the real evaluator can differ:

- The evaluator runs every minute, the preview once a window (a step, when asked per moment): times are
  accurate to a window, and asked per moment, a breach shorter than a step may be missed and durations,
  keep-firing and reopen periods are judged at the steps.
- The evaluator's window includes both its ends, a bucket is ``[start, start + window)``: an event stamped exactly
  on a moment counts in the evaluator's windows ending then and one window later, in the preview's only in the
  later one.
- Over more than an hour the query layer may answer a time series from rollups: counts, sums, minimums and
  maximums agree (to the last digits), percentiles come from sketches (within 1%; ``source`` says ``rollup``),
  where the evaluator's window of an hour or less reads raw events exactly. A percentile within 1% of the
  threshold may be judged differently.
- People are not replayed: a manual resolve would have reset a group; silences and maintenance windows hold back
  notifications only, never incidents.
- ``service.health`` cannot be previewed: its source is each service's current status, not a history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from django.utils import timezone
from pydantic import Field, WithJsonSchema
from typing_extensions import TypedDict

from alerts.models import SERVICE_HEALTH, AlertRule, AlertRuleGroupState, NoData, Operator, group_key
from alerts.services.evaluation import WHOLE_RULE, groups_to_step
from alerts.sources import GroupValue, Sources, group_of, rule_scope, window_ending
from analytics.platform.contracts import ResponseContract, Source
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services.metrics_query import PERCENTILES, Aggregate

MIN_DAYS, MAX_DAYS, DEFAULT_DAYS = 1, 30, 7
MAX_EVALUATIONS = 1500
MAX_SERIES_EVALUATIONS = 43_200  # 30 days of 1-minute windows: every window, on the time-series path
MAX_CHART_POINTS = 1500
MAX_CHARTED_GROUPS = 50
SERIES_INTERVALS = {seconds: name for name, seconds in query.INTERVALS.items()}


class PreviewUnavailable(ValueError):
    """This preview cannot be made; ``field`` is the input to blame (API: a 400 naming it)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


# --- The answer --------------------------------------------------------------------------------


class PreviewPoint(TypedDict):
    time: datetime
    value: float | None


GroupTags = dict[str, str | None]


def inline_enum(values: list[str]) -> dict:
    """An enum inline (allOf), not a component: the rule body's enums of the same values keep their names."""
    return {"allOf": [{"type": "string", "enum": list(values)}]}


class RulePreviewGroup(ResponseContract):
    group: GroupTags = Field(description="The group's tag values ({} for a rule without group_by).")
    points: list[PreviewPoint] = Field(description=f"The rule's value at each evaluation (null: no data); past "
                                                   f"{MAX_CHART_POINTS} evaluations, a point stands for several "
                                                   "consecutive ones, timed at the last, with their most breaching "
                                                   "value.")


class RulePreviewIncident(ResponseContract):
    group: GroupTags
    started_at: datetime = Field(description="When it would have opened (the group entered firing).")
    resolved_at: datetime | None = Field(description="When it would have resolved; null: still firing at the end.")
    value: float | None = Field(description="The value that made it fire (null: no data, with no_data alerting).")
    peak: float | None = Field(description="The most breaching value while it fired: the highest for gt/gte, the "
                                           "lowest for lt/lte, the first one for eq; null: no data.")


class RulePreview(ResponseContract):
    """The rule's value per group at each evaluation step, its threshold, and the incidents it would have opened."""

    metric_name: str
    aggregation: Aggregate = Field(description="Ignored by built-in sources, which define their value.")
    operator: Annotated[Literal[tuple(Operator.values)],  # type: ignore[valid-type]
                        WithJsonSchema(inline_enum(Operator.values))]
    threshold: float
    start: datetime = Field(description="The previewed period: `days` ending now.")
    end: datetime
    step_seconds: int = Field(description="Time between evaluations: the rule's window; for a value asked at each "
                                          "moment (a built-in source, a window that is no time-series interval), "
                                          f"a multiple of it that keeps a preview to {MAX_EVALUATIONS} evaluations.")
    evaluations: int
    source: Source = Field(description="rollup when any value came from rollups (percentiles within 1%).")
    group_count: int = Field(description="Groups seen in the period.")
    groups: list[RulePreviewGroup] = Field(description=f"At most {MAX_CHARTED_GROUPS} groups to chart: those with "
                                                       "incidents first.")
    incidents: list[RulePreviewIncident] = Field(description="Every incident it would have opened, oldest first.")
    incident_count: int
    current_incident_count: int | None = Field(None, description="With compare_to: the incidents the saved rule "
                                                                 "would have opened over the same days.")
    summary: str = Field(description='E.g. "This change would have opened 3 incidents instead of 7 in the last '
                                     '7 days."')


# --- Steps -------------------------------------------------------------------------------------


def evaluation_step(window_seconds: int, days: int, limit: int = MAX_EVALUATIONS) -> int:
    """The rule's window, or the smallest multiple of it giving at most ``limit`` evaluations."""
    return window_seconds * max(1, math.ceil(days * 86400 / (window_seconds * limit)))


def evaluation_moments(window_seconds: int, days: int, now: datetime,
                       limit: int = MAX_EVALUATIONS) -> list[datetime]:
    """The moments a preview evaluates at, oldest first: one step apart, on window boundaries, the last at or
    before ``now``; at least one (a window longer than the period)."""
    step = evaluation_step(window_seconds, days, limit)
    last = query.bucket_of(int(now.timestamp()), window_seconds)
    count = max(1, math.floor((last - (now.timestamp() - days * 86400)) / step) + 1)
    return [datetime.fromtimestamp(last - step * index, UTC) for index in reversed(range(count))]


def _most_breaching(values: list[float], operator: str) -> float:
    if operator in (Operator.GT, Operator.GTE):
        return max(values)
    if operator in (Operator.LT, Operator.LTE):
        return min(values)
    return values[0]


def chart_points(moments: list[datetime], values: dict[datetime, float | None], operator: str) -> list[PreviewPoint]:
    """At most MAX_CHART_POINTS points: consecutive evaluations share a point, timed at the last of them, with
    their most breaching value (null when none had data)."""
    size = math.ceil(len(moments) / MAX_CHART_POINTS)
    points: list[PreviewPoint] = []
    for start in range(0, len(moments), size):
        chunk = moments[start:start + size]
        seen = [value for moment in chunk if (value := values.get(moment)) is not None]
        points.append({"time": chunk[-1], "value": _most_breaching(seen, operator) if seen else None})
    return points


# --- Values ------------------------------------------------------------------------------------

Observations = list[tuple[datetime, Window, list[GroupValue]]]


def _pieces(start: datetime, end: datetime, seconds: int):
    """[start, end) as windows of at most MAX_POINTS - 1 buckets (time_series' limit). A window includes its end:
    each stops a microsecond before a bucket boundary, so no bucket is cut in two."""
    size = timedelta(seconds=seconds * (query.MAX_POINTS - 1))
    while start < end:
        stop = min(start + size, end)
        yield Window(start, stop - timedelta(microseconds=1))
        start = stop


def _from_time_series(rule: AlertRule, moments: list[datetime]) -> tuple[Observations, Source] | None:
    """One time series per group over the whole period; None when the rule's values cannot be asked that way."""
    interval = SERIES_INTERVALS.get(rule.window_seconds)
    if rule.is_built_in or interval is None:
        return None
    scope, tags, group_by = rule_scope(rule.org), rule.tags or {}, list(rule.group_by or [])
    groups = {}
    for _, series_tags in query.matching_series(rule.metric_name, org=scope, tags=tags):
        group = group_of(series_tags, group_by)
        groups[group_key(group)] = group
    if any(value is None for group in groups.values() for value in group.values()):
        return None  # no tag filter selects the series lacking a tag
    window = timedelta(seconds=rule.window_seconds)
    values: dict[str, dict[datetime, float | None]] = {}
    sources = set()
    for key, group in groups.items():
        ending_at = values[key] = {}
        for piece in _pieces(moments[0] - window, moments[-1], rule.window_seconds):
            series = query.time_series(rule.metric_name, piece, interval=interval, aggregate=rule.aggregation,
                                       org=scope, tags={**tags, **group})
            sources.add(series.source)
            for bucket_start, value in series.points:
                ending_at[bucket_start + window] = value
    observations = []
    for moment in moments:
        found = [GroupValue(groups[key], value=value) for key in groups
                 if (value := values[key].get(moment)) is not None]
        observations.append((moment, window_ending(moment, rule.window_seconds), found))
    return observations, "rollup" if "rollup" in sources else "raw"


def _from_sources(rule: AlertRule, moments: list[datetime]) -> tuple[Observations, Source]:
    """The evaluator's question at each moment."""
    observations: Observations = []
    for moment in moments:
        window = window_ending(moment, rule.window_seconds)
        # A pass would call finish() to claim the service transitions it saw; a preview claims nothing.
        found = Sources(moment).fetch(rule.metric_name, org=rule_scope(rule.org), window=window, tags=rule.tags or {},
                                      group_by=list(rule.group_by or []),
                                      with_percentiles=rule.aggregation in PERCENTILES)
        observations.append((moment, window, found))
    rollup = any(g.stats is not None and g.stats.source == "rollup" for _, _, found in observations for g in found)
    return observations, "rollup" if rollup else "raw"


# --- The replay --------------------------------------------------------------------------------


@dataclass
class _Incident:
    group: dict
    started_at: datetime
    value: float | None
    peak: float | None = None
    resolved_at: datetime | None = None

    def observe(self, value: float | None, operator: str) -> None:
        if value is None:
            return
        if self.peak is None:
            self.peak = value
        elif operator in (Operator.GT, Operator.GTE):
            self.peak = max(self.peak, value)
        elif operator in (Operator.LT, Operator.LTE):
            self.peak = min(self.peak, value)


@dataclass
class _Replay:
    moments: list[datetime]
    step_seconds: int
    source: Source
    groups: dict[str, dict] = field(default_factory=dict)
    values: dict[str, dict[datetime, float | None]] = field(default_factory=dict)
    incidents: list[_Incident] = field(default_factory=list)


def _replay(rule: AlertRule, days: int, now: datetime) -> _Replay:
    """Every evaluation of the period, as a pass makes it (``evaluation._evaluate_rule``), in memory."""
    limit = MAX_SERIES_EVALUATIONS
    moments = evaluation_moments(rule.window_seconds, days, now, limit)
    answered = _from_time_series(rule, moments)
    if answered is None:
        limit = MAX_EVALUATIONS
        moments = evaluation_moments(rule.window_seconds, days, now, limit)
        answered = _from_sources(rule, moments)
    observations, source = answered
    replay = _Replay(moments, evaluation_step(rule.window_seconds, days, limit), source)
    states: dict[str, AlertRuleGroupState] = {}
    firing: dict[str, _Incident] = {}
    for moment, window, found in observations:
        wanted, any_data = groups_to_step(rule, found, window, states)
        for key, (group, value) in wanted.items():
            replay.groups.setdefault(key, group)
            replay.values.setdefault(key, {})[moment] = value
            # A grouped rule's whole-rule group only stands for "no data at all": data is back, so it clears.
            no_data = NoData.OK if (key == WHOLE_RULE and rule.group_by and any_data) else None
            state = states.get(key) or AlertRuleGroupState(group_key=key, group=group)
            move = state.step(rule, value, value is not None, moment, no_data=no_data)
            if move is not None:
                states[key] = state  # the evaluator stores a group's state from its first move
                if move.opens_incident:
                    firing[key] = _Incident(group, started_at=moment, value=value)
                    replay.incidents.append(firing[key])
            incident = firing.get(key)
            if incident is not None:
                incident.observe(value, rule.condition_operator)
                if move is not None and move.resolves_incident:
                    incident.resolved_at = moment
                    del firing[key]
    return replay


def _check(rule: AlertRule, field_name: str) -> None:
    if rule.metric_name == SERVICE_HEALTH:
        raise PreviewUnavailable(field_name, f"{SERVICE_HEALTH} cannot be previewed: its source is each service's "
                                             "current status, not a history.")


def _incidents(count: int) -> str:
    return f"{count} incident" if count == 1 else f"{count} incidents"


def summary(opened: int, current: int | None, days: int) -> str:
    period = "the last day" if days == 1 else f"the last {days} days"
    if current is None:
        return f"This rule would have opened {_incidents(opened)} in {period}."
    if opened == current:
        return f"This change would have opened {_incidents(opened)} in {period}, as many as the current rule."
    return f"This change would have opened {_incidents(opened)} instead of {current} in {period}."


def preview_rule(rule: AlertRule, *, days: int = DEFAULT_DAYS, now: datetime | None = None,
                 compare_to: AlertRule | None = None) -> RulePreview:
    """What ``rule`` would have done over the last ``days`` (1-30); see the module's docstring.

    Raises ``PreviewUnavailable`` naming ``days``, ``metric_name`` or ``compare_to``.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise PreviewUnavailable("days", f"Must be an integer from {MIN_DAYS} to {MAX_DAYS}.")
    _check(rule, "metric_name")
    if compare_to is not None:
        _check(compare_to, "compare_to")
    now = now or timezone.now()
    replay = _replay(rule, days, now)
    current = None if compare_to is None else len(_replay(compare_to, days, now).incidents)
    with_incidents = {group_key(incident.group) for incident in replay.incidents}
    charted = sorted(replay.groups, key=lambda key: (key not in with_incidents, key))[:MAX_CHARTED_GROUPS]
    return RulePreview(
        metric_name=rule.metric_name, aggregation=rule.aggregation, operator=rule.condition_operator,
        threshold=rule.threshold, start=now - timedelta(days=days), end=now,
        step_seconds=replay.step_seconds, evaluations=len(replay.moments),
        source=replay.source, group_count=len(replay.groups),
        groups=[RulePreviewGroup(group=replay.groups[key],
                                 points=chart_points(replay.moments, replay.values[key], rule.condition_operator))
                for key in charted],
        incidents=[RulePreviewIncident(group=i.group, started_at=i.started_at, resolved_at=i.resolved_at,
                                       value=i.value, peak=i.peak) for i in replay.incidents],
        incident_count=len(replay.incidents), current_incident_count=current,
        summary=summary(len(replay.incidents), current, days),
    )
