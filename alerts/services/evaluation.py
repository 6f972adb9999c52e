"""The evaluation pass: every enabled rule, every minute (beat job ``check alerts``, ``manage.py check_alerts``).

    evaluate_rules(now=None, *, rules=None) -> PassSummary
    run_forever(interval_seconds=60, iterations=None, sleep=time.sleep)

Rules sharing (org, metric, window, tag filters, group_by) are answered by one question to the
source (``alerts.sources``): 1,000 rules over 50 metrics are 50 queries, not 1,000 scans.

Each group's next move is first decided on the state read at the start of the pass. Only a
group that moves is written, in its own transaction: its state row is locked
(``select_for_update``) and the move decided again on the locked row, so that two evaluators
running at once make each move once. The partial unique constraint "one unresolved incident per
rule and group" is the backstop: an evaluator that loses the race adopts the incident it finds.

A rule whose query fails enters the error state (``last_error``); its groups keep their state
and every other rule is evaluated as usual.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from alerts.models import (
    QUIET,
    RULE_ERROR,
    AlertIncident,
    AlertRule,
    AlertRuleGroupState,
    GroupStatus,
    IncidentEvent,
    IncidentStatus,
    NoData,
    group_key,
)
from alerts.services.incidents import lift_expired_silences
from alerts.sources import GroupValue, Sources, rule_scope, window_ending
from analytics.services.metrics_query import PERCENTILES

logger = logging.getLogger(__name__)

UPDATE_CHUNK = 500
WHOLE_RULE = group_key({})


@dataclass
class PassSummary:
    rules: int = 0
    queries: int = 0
    errors: int = 0
    moves: int = 0
    opened: int = 0
    resolved: int = 0
    unsilenced: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def query_key(rule: AlertRule) -> tuple:
    return (rule.org_id, rule.metric_name, rule.window_seconds, group_key(rule.tags or {}), tuple(rule.group_by or []))


def _savepoint_if_in_transaction():
    # A failed query inside an outer transaction (a test, a caller's atomic block) must not poison it.
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


def evaluate_rules(now: datetime | None = None, *, rules=None) -> PassSummary:
    now = now or timezone.now()
    started = time.monotonic()
    summary = PassSummary(unsilenced=lift_expired_silences(now))
    if rules is None:
        rules = AlertRule.objects.filter(enabled=True).select_related("org")
    rules = list(rules)
    summary.rules = len(rules)
    states: dict[int, dict[str, AlertRuleGroupState]] = defaultdict(dict)
    for state in AlertRuleGroupState.objects.filter(rule__in=[rule.pk for rule in rules]):
        states[state.rule_id][state.group_key] = state

    batches: dict[tuple, list[AlertRule]] = defaultdict(list)
    for rule in rules:
        batches[query_key(rule)].append(rule)
    sources = Sources(now)
    evaluated: list[int] = []
    quiet_values: list[AlertRuleGroupState] = []
    for batch in batches.values():
        first = batch[0]
        window = window_ending(now, first.window_seconds)
        try:
            with _savepoint_if_in_transaction():
                groups = sources.fetch(
                    first.metric_name, org=rule_scope(first.org), window=window, tags=first.tags or {},
                    group_by=list(first.group_by or []),
                    with_percentiles=any(rule.aggregation in PERCENTILES for rule in batch),
                )
        except Exception as error:
            logger.warning("check_alerts: query of %s failed for %d rule(s): %s", first.metric_name, len(batch),
                           error)
            for rule in batch:
                _enter_error(rule, error, now)
            summary.errors += len(batch)
            continue
        summary.queries += 1
        for rule in batch:
            try:
                with _savepoint_if_in_transaction():
                    quiet_values += _evaluate_rule(rule, groups, window, states[rule.pk], now, summary)
            except Exception as error:  # one rule's failure never stops the others
                logger.exception("check_alerts: rule %s (%s) failed", rule.pk, rule.name)
                _enter_error(rule, error, now)
                summary.errors += 1
                continue
            if rule.last_error:
                _leave_error(rule, now)
            evaluated.append(rule.pk)

    for start in range(0, len(evaluated), UPDATE_CHUNK):
        AlertRule.objects.filter(pk__in=evaluated[start:start + UPDATE_CHUNK]).update(last_evaluated_at=now)
    _store_quiet_values(quiet_values, now)
    sources.finish()
    summary.seconds = round(time.monotonic() - started, 3)
    logger.info("check_alerts: %(rules)d rules in %(queries)d queries, %(moves)d moves, %(opened)d opened, "
                "%(resolved)d resolved, %(unsilenced)d unsilenced, %(errors)d errors in %(seconds).2fs",
                summary.as_dict())
    return summary


def _store_quiet_values(states: list[AlertRuleGroupState], now: datetime) -> None:
    """The last value of every group that did not move: one prepared UPDATE, run for each row.

    (``bulk_update`` builds a CASE over every row: several times slower for the hundreds of rows of a pass.)
    """
    if not states:
        return
    table = connection.ops.quote_name(AlertRuleGroupState._meta.db_table)
    moment = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET last_value = %s, last_evaluated_at = %s WHERE id = %s",
                           [(state.last_value, moment, state.pk) for state in states])


def groups_to_step(rule: AlertRule, groups: list[GroupValue], window, known: dict[str, AlertRuleGroupState]):
    """{group key: (group, value)}: the observed groups, plus those that must hear of their missing data; and
    whether any group had data. The rule preview replays a period with it too."""
    observed = {group_key(g.group): (g.group, g.value_for(rule.aggregation, window)) for g in groups}
    wanted = dict(observed)
    for key, state in known.items():
        if key not in wanted and state.status not in QUIET:
            wanted[key] = (state.group, None)  # was breaching; its data is gone
    if WHOLE_RULE not in wanted and (not rule.group_by or (not observed and rule.no_data == NoData.ALERTING)):
        # A rule without group_by is one group, data or not; a grouped rule with no data at all alerts as a whole.
        wanted[WHOLE_RULE] = ({}, None)
    return wanted, bool(observed)


def _evaluate_rule(rule, groups, window, known, now, summary) -> list[AlertRuleGroupState]:
    """Step every group of the rule; returns the quiet states whose last value is to be stored in bulk."""
    wanted, any_data = groups_to_step(rule, groups, window, known)
    quiet = []
    for key, (group, value) in wanted.items():
        has_data = value is not None
        # A grouped rule's whole-rule group only stands for "no data at all": data is back, so it clears.
        no_data = NoData.OK if (key == WHOLE_RULE and rule.group_by and any_data) else None
        state = known.get(key)
        trial = copy.copy(state) if state is not None else AlertRuleGroupState(rule=rule, group_key=key, group=group)
        if trial.step(rule, value, has_data, now, no_data=no_data) is None:
            if state is not None and (state.last_value != value or state.last_evaluated_at != now):
                state.last_value, state.last_evaluated_at = value, now
                quiet.append(state)
            continue
        move = _apply(rule, key, group, value, has_data, now, no_data)
        if move is not None:
            summary.moves += 1
            summary.opened += move.opens_incident
            summary.resolved += move.resolves_incident
    return quiet


def _apply(rule, key, group, value, has_data, now, no_data):
    """Make the group's move under its row lock, deciding again on the locked row."""
    with transaction.atomic():
        state, created = AlertRuleGroupState.objects.get_or_create(rule=rule, group_key=key,
                                                                   defaults={"group": group})
        if not created:  # a row this transaction inserted is its own already
            state = AlertRuleGroupState.objects.select_for_update().get(pk=state.pk)
        if state.last_evaluated_at is not None and state.last_evaluated_at > now:
            return None  # a pass with a later clock has been here already
        incident_id = state.incident_id
        move = state.step(rule, value, has_data, now, no_data=no_data)
        state.last_value, state.last_evaluated_at = value, now
        if move is None:
            state.save()
            return None
        incident = None
        if move.opens_incident:
            incident = _open_incident(rule, state, group, value, now)
            state.incident = incident
        elif incident_id is not None:
            incident = AlertIncident.objects.select_for_update().filter(pk=incident_id).first()
        state.save()
        if move.resolves_incident and incident is not None and not incident.is_resolved:
            event = incident.move_to(IncidentStatus.RESOLVED, actor="", note="condition cleared", now=now)
            event.value = value
            incident.save()
            event.save()
            return move
        IncidentEvent.objects.create(
            rule=rule, group_key=key, incident=incident, kind=move.kind, from_status=move.from_status,
            to_status=move.to_status, value=value, threshold=rule.threshold, note=move.note, at=now,
        )
        if move.opens_incident and move.from_status == GroupStatus.PENDING:
            # The moves that led here (pending) become the start of the incident's timeline.
            IncidentEvent.objects.filter(rule=rule, group_key=key, incident__isnull=True,
                                         at__gte=state.pending_since or now).update(incident=incident)
    return move


def _open_incident(rule, state, group, value, now) -> AlertIncident:
    try:
        with transaction.atomic():
            incident = AlertIncident.objects.create(
                rule=rule, rule_name=rule.name, org_id=rule.org_id, group_key=state.group_key, group=group,
                severity=rule.severity, value=value, threshold=rule.threshold, condition=rule.condition,
                triggered_at=now,
            )
    except IntegrityError:
        # Another evaluator opened it (the row lock makes this rare; the constraint makes it harmless).
        return AlertIncident.objects.unresolved().get(rule=rule, group_key=state.group_key)
    AlertRule.objects.filter(pk=rule.pk).update(trigger_count=F("trigger_count") + 1, last_triggered_at=now)
    return incident


def _enter_error(rule: AlertRule, error: Exception, now: datetime) -> None:
    message = f"{type(error).__name__}: {error}"[:2000]
    with transaction.atomic():
        AlertRule.objects.filter(pk=rule.pk).update(last_error=message, error_since=rule.error_since or now,
                                                    last_evaluated_at=now)
        if not rule.last_error:
            IncidentEvent.objects.create(rule=rule, kind="error", from_status="", to_status=RULE_ERROR,
                                         threshold=rule.threshold, note=message, at=now)


def _leave_error(rule: AlertRule, now: datetime) -> None:
    with transaction.atomic():
        AlertRule.objects.filter(pk=rule.pk).update(last_error="", error_since=None)
        IncidentEvent.objects.create(rule=rule, kind="error_cleared", from_status=RULE_ERROR, to_status="",
                                     threshold=rule.threshold, note="the query answers again", at=now)


def run_forever(interval_seconds: float = 60.0, iterations: int | None = None, sleep=time.sleep) -> None:
    """``check_alerts --loop``: a pass every ``interval_seconds``."""
    count = 0
    while iterations is None or count < iterations:
        if not connection.in_atomic_block:
            close_old_connections()  # a long-lived loop must not keep a connection the server dropped
        started = time.monotonic()
        evaluate_rules()
        count += 1
        if iterations is None or count < iterations:
            sleep(max(0.0, interval_seconds - (time.monotonic() - started)))

