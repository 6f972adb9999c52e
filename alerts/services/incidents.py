"""The incident workflow: acknowledge, resolve, silence, and the end of a silence.

    acknowledge(incident_id, *, actor, note="", now=None) -> AlertIncident
    resolve(incident_id, *, actor, note="", now=None) -> AlertIncident
    silence(incident_id, *, until, actor, note="", now=None) -> AlertIncident
    lift_expired_silences(now) -> int

Each runs in one transaction with the incident row locked; an illegal move raises
``IllegalTransition`` (the API answers 409, the admin shows a message). ``actor`` names who
acted ("ops" for a staff user, "token member (twa_ab12cd…)" for an API token).

A manual resolve also resets the rule's group (locked first, in the evaluator's lock order),
so a condition still breaching opens a new incident only after ``duration_seconds`` again (and
no sooner than the rule's ``reopen_after_seconds``).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alerts.models import (
    AlertIncident,
    AlertRuleGroupState,
    GroupStatus,
    IllegalTransition,
    IncidentStatus,
    Silence,
)
from analytics.platform.windows import isoformat


class InvalidSilence(ValueError):
    field = "until"


def _locked(incident_id: int) -> AlertIncident:
    return AlertIncident.objects.select_for_update().get(pk=incident_id)


def _end_silences(incident: AlertIncident, now: datetime) -> None:
    Silence.objects.filter(incident=incident, ended_at__isnull=True, until__gt=now).update(ended_at=now)


def acknowledge(incident_id: int, *, actor: str, note: str = "", now: datetime | None = None) -> AlertIncident:
    now = now or timezone.now()
    with transaction.atomic():
        incident = _locked(incident_id)
        event = incident.move_to(IncidentStatus.ACKNOWLEDGED, actor=actor, note=note, now=now)
        _end_silences(incident, now)
        incident.save()
        event.save()
    return incident


def silence(incident_id: int, *, until: datetime, actor: str, note: str = "",
            now: datetime | None = None) -> AlertIncident:
    now = now or timezone.now()
    if until <= now:
        raise InvalidSilence("Must be in the future.")
    with transaction.atomic():
        incident = _locked(incident_id)
        event = incident.move_to(IncidentStatus.SILENCED, actor=actor, note=note, now=now, until=until)
        event.note = f"until {isoformat(until)}" + (f": {note}" if note else "")
        incident.save()
        event.save()
        Silence.objects.create(incident=incident, starts_at=now, until=until, created_by=actor, note=note)
    return incident


def resolve(incident_id: int, *, actor: str, note: str = "", now: datetime | None = None) -> AlertIncident:
    now = now or timezone.now()
    with transaction.atomic():
        found = AlertIncident.objects.get(pk=incident_id)
        state = None
        if found.rule_id is not None:
            state = (AlertRuleGroupState.objects.select_for_update()
                     .filter(rule_id=found.rule_id, group_key=found.group_key).first())
        incident = _locked(incident_id)
        event = incident.move_to(IncidentStatus.RESOLVED, actor=actor, note=note, now=now)
        if state is not None and state.incident_id in (None, incident.pk) and state.status != GroupStatus.INACTIVE:
            state.resolve(now)
            state.save()
        _end_silences(incident, now)
        incident.save()
        event.save()
    return incident


def lift_expired_silences(now: datetime) -> int:
    """Silenced incidents whose ``until`` has passed go back to the status they had (run by each pass)."""
    lifted = 0
    due = AlertIncident.objects.filter(status=IncidentStatus.SILENCED, silenced_until__lte=now)
    for incident_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            incident = _locked(incident_id)
            until = incident.silenced_until
            if incident.status != IncidentStatus.SILENCED or until is None or until > now:
                continue  # acted on meanwhile (no end, like the query's NULL, is never due)
            event = incident.lift_silence(now)
            incident.save()
            event.save()
            lifted += 1
    return lifted


def resolve_for_rule_change(rule, *, actor: str, note: str, now: datetime | None = None) -> int:
    """Resolve a rule's unresolved incidents and forget its group states (rule deleted, disabled, or its
    query changed): what was firing under the old definition says nothing about the new one."""
    now = now or timezone.now()
    resolved = 0
    for incident_id in rule.incidents.unresolved().values_list("pk", flat=True):
        try:
            resolve(incident_id, actor=actor, note=note, now=now)
        except IllegalTransition:
            continue  # resolved meanwhile
        resolved += 1
    AlertRuleGroupState.objects.filter(rule=rule).delete()
    return resolved
