"""Monitored services, their check history, status transitions and daily SLA figures.

The status rules live on ``Service`` (like healthchecks' ``Check``): what a check
outcome means, when a service is ``unknown``, and how a result is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone

from analytics.platform.tenancy import slug_validator

# A service with no result for this many intervals is ``unknown``.
STALE_AFTER_INTERVALS = 3
# For SLA, a result holds until the next check, but for at most this many intervals.
RESULT_HOLDS_INTERVALS = 2


class Status(models.TextChoices):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


# Worst last: the overall status of several services is the one ranked highest.
# Keyed by str: statuses are read back from the database (and compared) as plain strings.
STATUS_SEVERITY: dict[str, int] = {Status.HEALTHY: 0, Status.DEGRADED: 1, Status.UNKNOWN: 2, Status.UNHEALTHY: 3}
HEALTH_VALUES: dict[str, float] = {Status.HEALTHY: 1.0, Status.DEGRADED: 0.5, Status.UNHEALTHY: 0.0}


def worst_status(statuses) -> str:
    statuses = list(statuses)
    if not statuses:
        return Status.UNKNOWN
    return max(statuses, key=lambda status: STATUS_SEVERITY[status])


@dataclass(frozen=True)
class CheckOutcome:
    """What one run of a check found, before the status rules are applied."""

    ok: bool
    response_time_ms: float | None
    error: str = ""


class Service(models.Model):
    class Type(models.TextChoices):
        API = "api"
        DATABASE = "database"
        CACHE = "cache"
        EXTERNAL = "external"

    class CheckKind(models.TextChoices):
        DATABASE = "database", "Django database"
        CACHE = "cache", "Redis / cache ping"
        CELERY_BROKER = "celery_broker", "Celery broker"
        CELERY_WORKER = "celery_worker", "Celery worker ping"
        HTTP = "http", "HTTP(S) URL"
        TCP = "tcp", "TCP port"
        CUSTOM = "custom", "Custom check function"

    class HttpMethod(models.TextChoices):
        GET = "GET"
        HEAD = "HEAD"
        POST = "POST"

    name = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    description = models.CharField(max_length=200, blank=True)
    service_type = models.CharField(max_length=16, choices=Type.choices, default=Type.API)
    check_kind = models.CharField(max_length=16, choices=CheckKind.choices, default=CheckKind.HTTP)
    target = models.CharField(
        max_length=500,
        blank=True,
        help_text=(
            "database: a database alias (blank: default). cache: a redis:// URL, or a Django cache alias "
            "(blank: default). Celery: a broker URL (blank: the platform's broker). http: the URL. "
            "tcp: host:port. custom: the dotted path of a function taking the service."
        ),
    )
    http_method = models.CharField(max_length=8, choices=HttpMethod.choices, default=HttpMethod.GET)
    expected_status = models.PositiveSmallIntegerField(
        default=200, validators=[MinValueValidator(100), MaxValueValidator(599)]
    )
    body_keyword = models.CharField(max_length=200, blank=True, help_text="HTTP: the body must contain this.")
    interval_seconds = models.PositiveIntegerField(default=60, validators=[MinValueValidator(5)])
    timeout_seconds = models.FloatField(default=10.0, validators=[MinValueValidator(0.1), MaxValueValidator(300)])
    degraded_response_time_ms = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="A successful check slower than this makes the service degraded. Blank: never.",
    )
    failures_before_unhealthy = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)],
        help_text="Consecutive failures before the service is unhealthy; fewer make it degraded.",
    )
    sla_target = models.FloatField(
        default=99.9, validators=[MinValueValidator(0), MaxValueValidator(100)], help_text="Uptime target in %."
    )
    enabled = models.BooleanField(default=True)

    # Current state, kept by the runner (the history is in HealthCheck).
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNKNOWN, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_response_time_ms = models.FloatField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    # Null means due now. Runners claim a check by moving this forward with a conditional UPDATE.
    next_check_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        from monitoring.services.checks import CheckConfigError, check_for

        try:
            check_for(self).validate()
        except CheckConfigError as error:
            raise ValidationError({"target": str(error)}) from None

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.interval_seconds)

    def current_status(self, now: datetime | None = None) -> str:
        """The stored status, or ``unknown`` when there is no result for STALE_AFTER_INTERVALS intervals."""
        now = now or timezone.now()
        if self.last_checked_at is None or now - self.last_checked_at > STALE_AFTER_INTERVALS * self.interval:
            return Status.UNKNOWN
        return self.status

    def health_value(self, now: datetime | None = None) -> float | None:
        """``service.health`` for alert rules: 1 healthy, 0.5 degraded, 0 unhealthy, None when unknown."""
        return HEALTH_VALUES.get(self.current_status(now))

    @property
    def health(self) -> float | None:
        return self.health_value()

    def evaluate(self, outcome: CheckOutcome, previous_failures: int) -> tuple[str, int, str]:
        """(status, consecutive failures, why) for an outcome after ``previous_failures`` failures in a row."""
        if outcome.ok:
            slow = self.degraded_response_time_ms
            if slow is not None and outcome.response_time_ms is not None and outcome.response_time_ms > slow:
                return Status.DEGRADED, 0, f"response time {outcome.response_time_ms:.0f} ms above {slow:g} ms"
            return Status.HEALTHY, 0, "check succeeded"
        failures = previous_failures + 1
        if failures >= self.failures_before_unhealthy:
            return Status.UNHEALTHY, failures, f"{failures} consecutive failure(s): {outcome.error}"
        return Status.DEGRADED, failures, f"failure {failures} of {self.failures_before_unhealthy}: {outcome.error}"

    def claim(self, now: datetime) -> bool:
        """Take this due check for one runner; another runner holding the same row gets False."""
        claimed = Service.objects.filter(pk=self.pk, next_check_at=self.next_check_at).update(
            next_check_at=now + self.interval
        )
        if claimed:
            self.next_check_at = now + self.interval
        return bool(claimed)

    def record(self, outcome: CheckOutcome, checked_at: datetime) -> HealthCheck:
        """Store a check result, update the current state, and record a transition if the status changed."""
        with transaction.atomic():
            current = Service.objects.select_for_update().get(pk=self.pk)
            status, failures, reason = self.evaluate(outcome, current.consecutive_failures)
            result = HealthCheck.objects.create(
                service=self, status=status, response_time_ms=outcome.response_time_ms,
                error=outcome.error[:2000], consecutive_failures=failures, checked_at=checked_at,
            )
            Service.objects.filter(pk=self.pk).update(
                status=status, consecutive_failures=failures, last_checked_at=checked_at,
                last_response_time_ms=outcome.response_time_ms, last_error=outcome.error[:2000],
            )
            previous = current.status
            if previous != Status.UNKNOWN and current.current_status(checked_at) == Status.UNKNOWN:
                current._record_staleness()
                previous = Status.UNKNOWN
            if previous != status:
                self._transition(previous, status, checked_at, reason)
        self.status, self.consecutive_failures, self.last_checked_at = status, failures, checked_at
        self.last_response_time_ms, self.last_error = outcome.response_time_ms, outcome.error[:2000]
        return result

    def mark_unknown_if_stale(self, now: datetime) -> bool:
        """Record the move to ``unknown`` of a service whose results stopped coming."""
        if self.status == Status.UNKNOWN or self.current_status(now) != Status.UNKNOWN:
            return False
        with transaction.atomic():
            unchanged = Service.objects.filter(pk=self.pk, status=self.status, last_checked_at=self.last_checked_at)
            if not unchanged.update(status=Status.UNKNOWN):
                return False  # a check result arrived meanwhile
            self._record_staleness()
        self.status = Status.UNKNOWN
        return True

    def _record_staleness(self) -> None:
        if self.last_checked_at is None:
            return
        stale_since = self.last_checked_at + STALE_AFTER_INTERVALS * self.interval
        self._transition(self.status, Status.UNKNOWN, stale_since, f"no result for {STALE_AFTER_INTERVALS} intervals")

    def _transition(self, from_status: str, to_status: str, at: datetime, reason: str) -> None:
        from monitoring.signals import service_status_changed

        transition = ServiceTransition.objects.create(
            service=self, from_status=from_status, to_status=to_status, at=at, reason=reason[:500]
        )
        transaction.on_commit(
            lambda: service_status_changed.send(sender=Service, service=self, transition=transition)
        )


class HealthCheck(models.Model):
    """One run of a service's check (raw data: removed after the retention period)."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="checks")
    status = models.CharField(max_length=16, choices=Status.choices)
    response_time_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-checked_at"]
        indexes = [
            models.Index(fields=["service", "checked_at"], name="monitoring_check_service_time"),
            models.Index(fields=["checked_at"], name="monitoring_check_time"),
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.status} at {self.checked_at:%Y-%m-%d %H:%M:%S}"

    @property
    def succeeded(self) -> bool:
        return self.consecutive_failures == 0


class ServiceTransition(models.Model):
    """A status change, kept for a later consumer (alerting) to claim with ``claim()``."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=Status.choices)
    to_status = models.CharField(max_length=16, choices=Status.choices)
    at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["claimed_at", "at"], name="monitoring_transition_claim")]

    def __str__(self) -> str:
        return f"{self.service}: {self.from_status} → {self.to_status}"

    def claim(self, now: datetime | None = None) -> bool:
        """True for exactly one of several consumers claiming the same transition."""
        now = now or timezone.now()
        claimed = ServiceTransition.objects.filter(pk=self.pk, claimed_at__isnull=True).update(claimed_at=now)
        if claimed:
            self.claimed_at = now
        return bool(claimed)


class ServiceDailySLA(models.Model):
    """A service's SLA figures for one closed UTC day; outlives the raw check history."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="daily_sla")
    day = models.DateField()
    healthy_seconds = models.FloatField(default=0)
    degraded_seconds = models.FloatField(default=0)
    unhealthy_seconds = models.FloatField(default=0)
    unknown_seconds = models.FloatField(default=0)
    downtime_incidents = models.PositiveIntegerField(default=0)
    # Whether the day begins / ends inside an outage, so that days merge into exact incident counts.
    starts_unhealthy = models.BooleanField(default=False)
    ends_unhealthy = models.BooleanField(default=False)
    response_count = models.PositiveIntegerField(default=0)
    avg_response_time_ms = models.FloatField(null=True, blank=True)
    p95_response_time_ms = models.FloatField(null=True, blank=True)
    sla_target = models.FloatField()
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["service", "-day"]
        verbose_name = "daily SLA"
        verbose_name_plural = "daily SLA"
        constraints = [models.UniqueConstraint(fields=["service", "day"], name="monitoring_daily_sla_unique")]

    def __str__(self) -> str:
        return f"{self.service} {self.day}"

    @property
    def uptime_percentage(self) -> float | None:
        known = self.healthy_seconds + self.degraded_seconds + self.unhealthy_seconds
        if not known:
            return None
        return 100.0 * (self.healthy_seconds + self.degraded_seconds) / known
