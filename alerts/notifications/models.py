"""Channels and the outbox: every notification is a row before it is sent (docs/notifications.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import models
from django.db.models import F, Q

from alerts.notifications.url_safety import UnsafeUrl, check_saved_url
from analytics.platform.tenancy import Organization


class NotificationChannel(models.Model):
    """Where notifications go: an email list, a Slack incoming webhook, or a signed generic webhook.

    A rule routes to the channels that name it (``rules``); a rule naming none goes to the channels that
    are a default for its severity (``default_for``). An org's rules use its own channels and the platform's
    (org empty); platform rules use platform channels only.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        SLACK = "slack", "Slack"
        WEBHOOK = "webhook", "Webhook"

    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            help_text="Empty: a platform channel, usable by every org's rules.")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True, help_text=(
        'email: {"to": ["ops@example.com"]}; slack and webhook: {"url": "https://..."}'))
    secret = models.CharField(max_length=200, blank=True, help_text=(
        "Webhook only: the HMAC-SHA256 key of the X-ToolWeaver-Signature header. Never shown again."))
    rules = models.ManyToManyField("alerts.AlertRule", blank=True, related_name="channels",
                                   help_text="The rules that notify this channel.")
    default_for = models.JSONField(default=list, blank=True, help_text=(
        'Severities this channel receives from rules that name no channel, e.g. ["critical", "error"].'))
    repeat_interval_seconds = models.PositiveIntegerField(default=4 * 3600, help_text=(
        "Notify again while an incident is still open and not acknowledged; 0: never."))
    group_wait_seconds = models.PositiveIntegerField(default=30, help_text=(
        "A firing waits this long for the rule's other groups that fire too: they are told in one message."))
    timeout_seconds = models.FloatField(default=10.0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self):
        from alerts.models import Severity

        errors = {}
        if self.kind == self.Kind.EMAIL:
            recipients = self.config.get("to") if isinstance(self.config, dict) else None
            if not isinstance(recipients, list) or not recipients:
                errors["config"] = 'An email channel needs {"to": ["address", ...]}.'
            else:
                for address in recipients:
                    try:
                        EmailValidator()(address)
                    except ValidationError:
                        errors["config"] = f"{address!r} is not an email address."
                        break
        elif self.kind in (self.Kind.SLACK, self.Kind.WEBHOOK):
            url = self.config.get("url") if isinstance(self.config, dict) else None
            try:
                URLValidator(schemes=["http", "https"])(url or "")
            except ValidationError:
                errors["config"] = f'A {self.kind} channel needs {{"url": "https://..."}}.'
            else:
                try:
                    check_saved_url(url)
                except UnsafeUrl as unsafe:
                    errors["config"] = f'"url": {unsafe}.'
        # Items that are not strings (e.g. an unhashable {}) are not severities either: never a TypeError.
        valid = isinstance(self.default_for, list) and all(
            isinstance(item, str) and item in Severity.values for item in self.default_for)
        if not valid:
            errors["default_for"] = f"A list of severities: {', '.join(Severity.values)}."
        if not 0 < self.timeout_seconds <= 60:
            errors["timeout_seconds"] = "From 0 to 60 seconds."
        if errors:
            raise ValidationError(errors)


class Notification(models.Model):
    """One message to one channel: pending until a worker claims and sends it (the outbox).

    A worker claims a row with a conditional UPDATE (``claim``) that also takes a lease; a worker that
    dies mid-send leaves the row to be claimed again when the lease ends, so nothing pending is lost and no
    two workers hold it at once.
    """

    class Kind(models.TextChoices):
        FIRING = "firing", "firing"
        REPEAT = "repeat", "repeat"
        RESOLVED = "resolved", "resolved"
        TEST = "test", "test"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    incident = models.ForeignKey("alerts.AlertIncident", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="notifications")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    sequence = models.PositiveIntegerField(default=0, help_text="0 for firing and resolved; 1, 2, … for repeats.")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_duration_ms = models.FloatField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Planning is idempotent: one firing, one resolved and one row per repeat per incident and channel.
            models.UniqueConstraint(fields=["incident", "channel", "kind", "sequence"],
                                    condition=Q(incident__isnull=False), name="alerts_one_notification"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="alerts_outbox_due")]

    def __str__(self) -> str:
        return f"{self.kind} to {self.channel.name} ({self.status})"

    def claim(self, now: datetime, lease: timedelta) -> bool:
        """True for exactly one of several workers: the row is due, pending, and nobody's lease runs."""
        claimed = (Notification.objects
                   .filter(pk=self.pk, status=self.Status.PENDING, next_attempt_at__lte=now)
                   .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
                   .update(claimed_until=now + lease, attempts=F("attempts") + 1))
        if claimed:
            self.refresh_from_db(fields=["claimed_until", "attempts"])
        return bool(claimed)


class MaintenanceWindow(models.Model):
    """Planned work: notifications of the incidents it matches are held back while it is on.

    One-off (``starts_at`` to ``ends_at``) or recurring: on ``weekdays`` (0 = Monday) at ``start_time`` in the
    IANA ``timezone`` for ``duration_minutes`` — the local time holds across daylight-saving changes, so a
    09:00 Berlin window is 08:00 UTC in winter and 07:00 UTC in summer. It matches like a silence: a rule,
    and labels among the incident's group and its rule's labels (per service: ``{"service": "<name>"}``).
    """

    name = models.CharField(max_length=100)
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            help_text="Empty: incidents of every org.")
    rule = models.ForeignKey("alerts.AlertRule", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="maintenance_windows")
    matchers = models.JSONField(default=dict, blank=True, help_text='e.g. {"service": "platform-database"}')
    starts_at = models.DateTimeField(null=True, blank=True, help_text="One-off: the start.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="One-off: the end.")
    weekdays = models.JSONField(default=list, blank=True, help_text="Recurring: days, 0 = Monday … 6 = Sunday.")
    start_time = models.TimeField(null=True, blank=True, help_text="Recurring: local start time.")
    duration_minutes = models.PositiveIntegerField(default=60, help_text="Recurring: how long each time.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="Recurring: an IANA time zone.")
    note = models.TextField(blank=True)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def recurring(self) -> bool:
        return self.start_time is not None

    def clean(self):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        errors = {}
        if self.recurring:
            if not isinstance(self.weekdays, list) or not self.weekdays or not all(
                    isinstance(day, int) and 0 <= day <= 6 for day in self.weekdays):
                errors["weekdays"] = "A list of days, 0 (Monday) to 6 (Sunday)."
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a directory
                errors["timezone"] = "An IANA time zone, e.g. Europe/Berlin."
            if not 0 < self.duration_minutes <= 7 * 24 * 60:
                errors["duration_minutes"] = "From 1 minute to a week."
        elif not (self.starts_at and self.ends_at and self.ends_at > self.starts_at):
            errors["ends_at"] = "A one-off window needs a start and a later end (or set a recurring start time)."
        if not isinstance(self.matchers, dict) or not all(
                isinstance(key, str) and isinstance(value, str) for key, value in self.matchers.items()):
            errors["matchers"] = 'An object of label to value, e.g. {"service": "platform-database"}.'
        if errors:
            raise ValidationError(errors)

    def occurrence(self, now: datetime) -> datetime | None:
        """The start of the occurrence in force at ``now``, or None when the window is off."""
        if self.start_time is None:  # one-off
            return self.starts_at if self.starts_at and self.ends_at and self.starts_at <= now < self.ends_at else None
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.timezone)
        local_today = now.astimezone(zone).date()
        duration = timedelta(minutes=self.duration_minutes)
        for days_back in range(duration.days + 2):  # an occurrence may have begun on an earlier day
            day = local_today - timedelta(days=days_back)
            if day.weekday() not in self.weekdays:
                continue
            # In UTC before the duration is added: an occurrence lasts its minutes of elapsed time, also
            # across a daylight-saving change (a start in the skipped hour begins an hour later, local time).
            start = datetime.combine(day, self.start_time, tzinfo=zone).astimezone(UTC)
            if start <= now < start + duration:
                return start
        return None

    def hold(self, now: datetime) -> tuple[str, str] | None:
        """(mark, note) for the timelines of the incidents it holds back now; None when it is off."""
        start = self.occurrence(now)
        if start is None:
            return None
        end = self.ends_at if not self.recurring else start + timedelta(minutes=self.duration_minutes)
        mark = f"maintenance window #{self.pk} ({start.isoformat()})"
        return mark, f"notification held back by {mark} until {end.isoformat() if end else '?'}: {self.name}"

    def matches(self, incident) -> bool:
        if self.org_id is not None and self.org_id != incident.org_id:
            return False
        if self.rule_id is not None and self.rule_id != incident.rule_id:
            return False
        labels = {**(incident.rule.labels if incident.rule_id and incident.rule else {}), **incident.group}
        return all(labels.get(key) == value for key, value in self.matchers.items())
