"""Channels and the outbox: every notification is a row before it is sent (docs/notifications.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import models
from django.db.models import F, Q

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
        unknown = set(self.default_for or []) - set(Severity.values) if isinstance(self.default_for, list) else {0}
        if unknown:
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
