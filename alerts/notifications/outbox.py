"""When notifications are sent, and how often (docs/notifications.md).

``plan(now)`` turns incident state into outbox rows, idempotently (a unique constraint per incident, channel,
kind and repeat): a firing row per routed channel for each unresolved incident that is not silenced; a
resolved row wherever a firing one was sent (the resolve is the contract, silenced in between or not); a
repeat row every channel's repeat interval while an incident stays open and unacknowledged.

``deliver(now)`` sends what is due: each row is claimed with a conditional UPDATE that takes a lease, sent
with the channel's timeout, and then marked sent; a temporary failure is retried with exponential backoff,
a permanent one (an HTTP 4xx other than 429, a refused address) fails the row at once. ``run(now)`` does both.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertIncident, IncidentStatus, Silence
from alerts.notifications.messages import DeliveryError, MessageKind, NotificationMessage
from alerts.notifications.models import MaintenanceWindow, Notification, NotificationChannel
from alerts.notifications.transports import transport_for
from monitoring.models import Service, ServiceTransition, Status

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
LEASE_MARGIN = timedelta(seconds=60)  # past the send timeout: a lease outlives any send it covers
BATCH = 200


@dataclass
class OutboxSummary:
    planned: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"planned": self.planned, "sent": self.sent, "retried": self.retried, "failed": self.failed}


# --- Routing -----------------------------------------------------------------------------------------


def channels_for(incident: AlertIncident) -> list[NotificationChannel]:
    """The enabled channels of the incident's rule, else the defaults for its severity (own org or platform)."""
    usable = NotificationChannel.objects.filter(enabled=True).filter(
        Q(org__isnull=True) | Q(org_id=incident.org_id) if incident.org_id else Q(org__isnull=True))
    if incident.rule_id is not None:
        named = list(usable.filter(rules=incident.rule_id))
        if named:
            return named
    return [channel for channel in usable if incident.severity in (channel.default_for or [])]


# --- Planning ----------------------------------------------------------------------------------------


def _add(incident: AlertIncident, channel: NotificationChannel, kind: str, now: datetime, sequence: int = 0,
         due: datetime | None = None) -> bool:
    try:
        with transaction.atomic():
            Notification.objects.create(incident=incident, channel=channel, kind=kind, sequence=sequence,
                                        created_at=now, next_attempt_at=due or now)
    except IntegrityError:
        return False  # planned already (by this pass's twin, or an earlier pass)
    return True


def plan(now: datetime | None = None) -> int:
    """Outbox rows for what incidents' states call for; returns how many were added."""
    now = now or timezone.now()
    added = 0
    firing = AlertIncident.objects.filter(status__in=[IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED])
    holds = active_holds(now)
    for incident in firing.select_related("rule"):
        channels = channels_for(incident)
        if not channels:
            _record_once(incident, now, mark="no channel routes it",
                         note=f"not notified: no channel routes it (the rule names no enabled channel, and no "
                              f"channel is the default for {incident.severity})")
            continue
        hold = next((hold for hold in holds if hold.matcher.matches(incident)), None)
        if hold is not None:
            _record_once(incident, now, mark=hold.mark, note=hold.note, actor=hold.actor)
            continue
        planned = {(row.channel_id, row.kind): row for row in incident.notifications.order_by("sequence")}
        for channel in channels:
            first = planned.get((channel.pk, Notification.Kind.FIRING))
            if first is None:
                added += _add(incident, channel, Notification.Kind.FIRING, now,
                              due=now + timedelta(seconds=channel.group_wait_seconds))
                continue
            last = _repeat_due(incident, channel, now)
            if last is None:
                continue
            if incident.status == IncidentStatus.OPEN:
                added += _add(incident, channel, Notification.Kind.REPEAT, now, sequence=last.sequence + 1)
            else:  # acknowledged: someone is on it, the reminder would be a duplicate
                _record_once(incident, now, mark=f"repeat to {channel.name} not sent",
                             since=incident.acknowledged_at,
                             note=f"repeat to {channel.name} not sent: acknowledged by "
                                  f"{incident.acknowledged_by or 'someone'}; no repeats until it fires anew")
    added += _plan_resolves(now)
    _record_held_back(now)
    return added


# --- Holds: what keeps a firing incident's notifications back ------------------------------------------

HELD_BACK = "not_notified"  # the timeline's record of a decision not to send
DEPENDS_ON_SERVICE = "depends_on_service"  # a rule label: inhibited while that service is unhealthy


@dataclass(frozen=True)
class Inhibition:
    """An unhealthy service holds back the rules that declare they depend on it (one outage, one page)."""

    service: str

    def matches(self, incident: AlertIncident) -> bool:
        labels = incident.rule.labels if incident.rule_id and incident.rule else {}
        return labels.get(DEPENDS_ON_SERVICE) == self.service


@dataclass(frozen=True)
class Hold:
    """A general silence, a maintenance window or an inhibition in force: what it matches, and what the
    timeline says."""

    matcher: Silence | MaintenanceWindow | Inhibition
    mark: str  # identifies the silence, the window's occurrence or the outage: recorded once per incident
    note: str
    actor: str


def active_holds(now: datetime) -> list[Hold]:
    """The general silences, maintenance windows and inhibitions in force (an incident's own silence makes
    it SILENCED instead)."""
    holds = []
    for silence in Silence.objects.filter(incident__isnull=True, ended_at__isnull=True, starts_at__lte=now,
                                          until__gt=now):
        reason = f": {silence.note}" if silence.note else ""
        mark = f"silence #{silence.pk}"
        holds.append(Hold(silence, mark, f"notification held back by {mark} until {silence.until.isoformat()}"
                                         f"{reason}", silence.created_by))
    for window in MaintenanceWindow.objects.all():
        held = window.hold(now)
        if held is not None:
            holds.append(Hold(window, *held, window.created_by))
    for name, since in _unhealthy_services():
        mark = f"inhibited: service {name} unhealthy since {since.isoformat() if since else '?'}"
        holds.append(Hold(Inhibition(name), mark, f"notification held back ({mark})", ""))
    return holds


def _unhealthy_services() -> list[tuple[str, datetime | None]]:
    """(name, when it became unhealthy) of each unhealthy service; the time tells one outage from the next."""
    services = list(Service.objects.filter(status=Status.UNHEALTHY).values_list("pk", "name"))
    if not services:
        return []
    since = dict(ServiceTransition.objects.filter(service_id__in=[pk for pk, _ in services],
                                                  to_status=Status.UNHEALTHY)
                 .values("service_id").annotate(last=Max("at")).values_list("service_id", "last"))
    return [(name, since.get(pk)) for pk, name in services]


def _record_once(incident: AlertIncident, now: datetime, *, mark: str, note: str, actor: str = "",
                 since: datetime | None = None) -> None:
    """A decision not to send, on the incident's timeline once (per ``mark``, since ``since``)."""
    earlier = incident.events.filter(kind=HELD_BACK, note__contains=mark)
    if since is not None:
        earlier = earlier.filter(at__gte=since)
    if not earlier.exists():
        incident.event(HELD_BACK, incident.status, incident.status, at=now, actor=actor, note=note).save()


def _record_held_back(now: datetime) -> None:
    """On each silenced incident's timeline, once per silence: its firing was not sent, and why."""
    silenced = AlertIncident.objects.filter(status=IncidentStatus.SILENCED).exclude(
        notifications__kind=Notification.Kind.FIRING)
    for incident in silenced:
        since = incident.events.filter(kind=IncidentStatus.SILENCED).order_by("-at").values_list("at", flat=True)
        silenced_at = since.first() or incident.triggered_at
        if incident.events.filter(kind=HELD_BACK, at__gte=silenced_at).exists() or not channels_for(incident):
            continue
        until = incident.silenced_until.isoformat() if incident.silenced_until else "further notice"
        incident.event(HELD_BACK, incident.status, incident.status, at=now,
                       note=f"notification held back: silenced until {until}").save()


def _repeat_due(incident: AlertIncident, channel: NotificationChannel, now: datetime) -> Notification | None:
    """The last firing or repeat sent to ``channel``, when the channel's repeat interval has passed since."""
    if not channel.repeat_interval_seconds:
        return None
    last = (incident.notifications.filter(channel=channel, kind__in=[Notification.Kind.FIRING,
                                                                      Notification.Kind.REPEAT])
            .order_by("-sequence").first())
    if last is None or last.status != Notification.Status.SENT or last.sent_at is None:
        return None
    if now - last.sent_at < timedelta(seconds=channel.repeat_interval_seconds):
        return None
    return last


def _plan_resolves(now: datetime) -> int:
    """A resolved row for every channel told of the firing; a firing never sent is cancelled instead."""
    resolved_row = Notification.objects.filter(incident=OuterRef("incident"), channel=OuterRef("channel"),
                                               kind=Notification.Kind.RESOLVED)
    told = (Notification.objects.filter(kind=Notification.Kind.FIRING, incident__status=IncidentStatus.RESOLVED,
                                        status__in=[Notification.Status.PENDING, Notification.Status.SENT])
            .filter(~Exists(resolved_row)).select_related("incident", "channel"))
    added = 0
    for row in told[:BATCH]:
        if row.status == Notification.Status.SENT and row.incident is not None:
            added += _add(row.incident, row.channel, Notification.Kind.RESOLVED, now)
            continue
        # Never sent: nobody was told it fired, so nobody is told it resolved. A worker sending it right
        # now holds its lease: the next pass sees it sent and plans the resolve.
        cancelled = Notification.objects.filter(pk=row.pk, status=Notification.Status.PENDING).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)).update(
            status=Notification.Status.CANCELLED, last_error="resolved before it was sent")
        if cancelled and row.incident is not None:
            _record_once(row.incident, now, mark=f"firing to {row.channel.name} not sent",
                         note=f"firing to {row.channel.name} not sent: resolved before it was due (within the "
                              f"channel's group wait or retries); so no resolve either")
    return added


# --- Delivery ----------------------------------------------------------------------------------------


def incident_url(incident: AlertIncident | None) -> str:
    if incident is None:
        return ""
    path = reverse("admin:alerts_alertincident_change", args=[incident.pk])
    base = getattr(settings, "SITE_URL", "") or ""
    return base.rstrip("/") + path


def message_for(row: Notification) -> NotificationMessage:
    incident = row.incident
    if incident is None:  # a channel's test
        return NotificationMessage(kind="test", rule_name="test notification", severity="info", status="test",
                                   condition="this channel works", threshold=0.0, value=None,
                                   notification_id=row.pk, triggered_at=row.created_at)
    return NotificationMessage(
        kind=cast(MessageKind, row.kind), rule_name=incident.rule_name, severity=incident.severity,
        status=incident.status,
        condition=incident.condition, threshold=incident.threshold, value=incident.value, group=incident.group,
        incident_id=incident.pk, incident_url=incident_url(incident),
        org=incident.org.slug if incident.org else "", triggered_at=incident.triggered_at,
        resolved_at=incident.resolved_at, notification_id=row.pk,
    )


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … at most an hour, after the ``attempts``-th failure."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


MAX_GROUP = 50


def claim_siblings(row: Notification, now: datetime, lease: timedelta) -> list[Notification]:
    """Other due firings of the same rule to the same channel, claimed to go out in ``row``'s message."""
    if row.kind != Notification.Kind.FIRING or row.incident is None or row.incident.rule_id is None:
        return []
    candidates = (Notification.objects
                  .filter(kind=Notification.Kind.FIRING, status=Notification.Status.PENDING, channel=row.channel_id,
                          incident__rule=row.incident.rule_id, next_attempt_at__lte=now)
                  .exclude(pk=row.pk).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
                  .select_related("incident", "incident__org").order_by("id")[:MAX_GROUP])
    return [candidate for candidate in candidates if candidate.claim(now, lease)]


GROUPED = "grouped"  # the timeline's record: this firing went out in one message with others


def _record_grouping(channel: NotificationChannel, rows: list[Notification], at: datetime) -> None:
    """On each incident of a grouped message: which others it went out with (not a message of its own)."""
    if len(rows) < 2:
        return
    incidents = sorted((row.incident for row in rows if row.incident is not None), key=lambda each: each.pk)
    for incident in incidents:
        others = ", ".join(f"#{other.pk}" for other in incidents if other.pk != incident.pk)
        incident.event(GROUPED, incident.status, incident.status, at=at,
                       note=f"firing sent to {channel.name} in one message with incident(s) {others} "
                            f"of the same rule").save()


def send_one(row: Notification, now: datetime, siblings: list[Notification] | None = None) -> str:
    """Send a claimed row (with claimed siblings in the same message) and record the outcome on each:
    ``sent``, ``retried`` or ``failed``."""
    channel = row.channel
    rows = [row, *(siblings or [])]
    message = replace(message_for(row), also=tuple(message_for(sibling) for sibling in siblings or []))
    started = time.perf_counter()
    error: DeliveryError | None = None
    try:
        transport_for(channel.kind).send(channel.config, channel.secret, message, timeout=channel.timeout_seconds)
    except DeliveryError as failure:
        error = failure
    duration_ms = (time.perf_counter() - started) * 1000
    done = now + timedelta(milliseconds=duration_ms)  # the pass's clock (tests run passes at chosen moments)
    ids = [each.pk for each in rows]
    if error is None:
        Notification.objects.filter(pk__in=ids).update(status=Notification.Status.SENT, sent_at=done,
                                                       claimed_until=None, last_error="",
                                                       last_duration_ms=duration_ms)
        _record_grouping(channel, rows, done)
        return "sent"
    if error.permanent or row.attempts >= MAX_ATTEMPTS:
        outcome, status, retry_at = "failed", Notification.Status.FAILED, row.next_attempt_at
    else:
        delay = backoff(row.attempts)
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            delay = max(delay, timedelta(seconds=float(retry_after)))
        outcome, status, retry_at = "retried", Notification.Status.PENDING, done + delay
    logger.warning("notification %s to %s: %s (attempt %d, %s)", row.pk, channel.name, error, row.attempts, outcome)
    Notification.objects.filter(pk__in=ids).update(status=status, next_attempt_at=retry_at, claimed_until=None,
                                                   last_error=str(error)[:2000], last_duration_ms=duration_ms)
    return outcome


def deliver(now: datetime | None = None, summary: OutboxSummary | None = None) -> OutboxSummary:
    """Send every due row this worker manages to claim."""
    now = now or timezone.now()
    summary = summary or OutboxSummary()
    due = (Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
           .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
           .select_related("channel", "incident", "incident__org").order_by("next_attempt_at", "id"))
    for row in due[:BATCH]:
        lease = timedelta(seconds=row.channel.timeout_seconds) + LEASE_MARGIN
        if not row.claim(now, lease):
            continue  # another worker has it (or it went out with a sibling's message)
        outcome = send_one(row, now, claim_siblings(row, now, lease))
        setattr(summary, outcome, getattr(summary, outcome) + 1)
    return summary


def run(now: datetime | None = None) -> OutboxSummary:
    """Plan, then deliver: one pass of the notifier."""
    now = now or timezone.now()
    summary = OutboxSummary(planned=plan(now))
    deliver(now, summary)
    if summary.planned or summary.sent or summary.retried or summary.failed:
        logger.info("notifications: %s", summary.as_dict())
    return summary


def send_test(channel: NotificationChannel, now: datetime | None = None) -> Notification:
    """A test row for ``channel``, sent now (the admin's "send test notification")."""
    now = now or timezone.now()
    row = Notification.objects.create(channel=channel, kind=Notification.Kind.TEST, created_at=now,
                                      next_attempt_at=now)
    if row.claim(now, timedelta(seconds=channel.timeout_seconds) + LEASE_MARGIN):
        send_one(row, now)
    row.refresh_from_db()
    return row
