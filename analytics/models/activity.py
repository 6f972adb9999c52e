"""Activity of the platform's users and agents (seed 003), and the per-period analytics computed from it.

``ActivityEvent`` is one narrow, typed row per thing that happened (a session, a bid, an agent call…). Each
type's fields map onto the same few columns — ``user_id``, ``agent_id``, ``contract_id``, ``value``, ``fee``,
``success``, ``detail`` — as ``analytics.services.activity.EVENT_TYPES`` declares (docs/activity.md).

``UserAnalytics``, ``AgentAnalytics`` and ``PlatformMetrics`` hold one row per entity and period (hour, day,
ISO week, calendar month, UTC), upserted by ``analytics.services.activity_periods``: computing a period again
gives the same row.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from analytics.platform.tenancy import Organization

ENTITY_ID_MAX_LENGTH = 200


class EventType(models.TextChoices):
    SIGNUP = "signup"
    SESSION = "session"
    PAGE_VIEW = "page_view"
    ACTION = "action"
    CONTRACT_CREATED = "contract_created"
    CONTRACT_COMPLETED = "contract_completed"
    CONTRACT_CANCELLED = "contract_cancelled"
    CONTRACT_FAILED = "contract_failed"
    BID = "bid"
    CONTRACT_WON = "contract_won"
    CREDITS_PURCHASED = "credits_purchased"
    CREDITS_SPENT = "credits_spent"
    PAYMENT = "payment"
    AGENT_REGISTERED = "agent_registered"
    AGENT_CALL = "agent_call"
    AGENT_HEARTBEAT = "agent_heartbeat"
    VALIDATION_SCORE = "validation_score"
    REPUTATION_SCORE = "reputation_score"
    ORCHESTRATION = "orchestration"
    FRAUD_ALERT = "fraud_alert"
    SECURITY_EVENT = "security_event"


class PeriodType(models.TextChoices):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"  # ISO week: Monday 00:00 UTC
    MONTH = "month"


class ActivityEvent(models.Model):
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(max_length=24, choices=EventType.choices)
    timestamp = models.DateTimeField()
    user_id = models.CharField(max_length=ENTITY_ID_MAX_LENGTH, blank=True)
    agent_id = models.CharField(max_length=ENTITY_ID_MAX_LENGTH, blank=True)
    contract_id = models.CharField(max_length=ENTITY_ID_MAX_LENGTH, blank=True)
    # The type's measure: a session's active seconds, credits, an amount or bid price, a response time in
    # ms, a score 0-100, an orchestration's duration in ms.
    value = models.FloatField(null=True, blank=True)
    fee = models.FloatField(null=True, blank=True, help_text="A payment's platform fee.")
    # An agent call's or orchestration's outcome; a heartbeat's "available".
    success = models.BooleanField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True, help_text="The type's other fields (a path, a reason…).")
    event_id = models.CharField(max_length=128, null=True, blank=True)

    class Meta:
        db_table = "activity_event"
        indexes = [
            models.Index(fields=["org", "timestamp"], name="activity_org_time"),
            models.Index(fields=["org", "type", "timestamp"], name="activity_org_type_time"),
            models.Index(fields=["org", "user_id", "timestamp"], name="activity_org_user_time"),
            models.Index(fields=["org", "agent_id", "timestamp"], name="activity_org_agent_time"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["org", "event_id"], condition=models.Q(event_id__isnull=False),
                                    name="activity_event_dedup"),
        ]

    def __str__(self) -> str:
        who = self.user_id or self.agent_id or "-"
        return f"{self.type} {who} at {self.timestamp:%Y-%m-%d %H:%M:%S}"


class PeriodRow(models.Model):
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    period_type = models.CharField(max_length=5, choices=PeriodType.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True


class UserAnalytics(PeriodRow):
    user_id = models.CharField(max_length=ENTITY_ID_MAX_LENGTH)
    sessions = models.PositiveIntegerField(default=0)
    page_views = models.PositiveIntegerField(default=0)
    actions = models.PositiveIntegerField(default=0)
    active_seconds = models.FloatField(default=0.0)
    contracts_created = models.PositiveIntegerField(default=0)
    contracts_completed = models.PositiveIntegerField(default=0)
    contracts_cancelled = models.PositiveIntegerField(default=0)
    credits_purchased = models.FloatField(default=0.0)
    credits_spent = models.FloatField(default=0.0)
    total_spent = models.FloatField(default=0.0, help_text="Payments made by the user.")
    agents_used = models.PositiveIntegerField(default=0)
    agent_ids = models.JSONField(default=list, blank=True, help_text="The distinct agents the user called.")
    orchestrations_run = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "user analytics"
        constraints = [models.UniqueConstraint(fields=["org", "user_id", "period_type", "period_start"],
                                               name="user_analytics_one_per_period")]
        indexes = [models.Index(fields=["org", "period_type", "period_start"], name="user_analytics_period")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.period_type} {self.period_start:%Y-%m-%d %H:%M}"


class AgentAnalytics(PeriodRow):
    agent_id = models.CharField(max_length=ENTITY_ID_MAX_LENGTH)
    calls = models.PositiveIntegerField(default=0)
    successful_calls = models.PositiveIntegerField(default=0)
    failed_calls = models.PositiveIntegerField(default=0)
    success_rate = models.FloatField(null=True, blank=True, help_text="0-1; empty without calls.")
    avg_response_time_ms = models.FloatField(null=True, blank=True)
    p50_response_time_ms = models.FloatField(null=True, blank=True)
    p95_response_time_ms = models.FloatField(null=True, blank=True)
    p99_response_time_ms = models.FloatField(null=True, blank=True)
    uptime_seconds = models.FloatField(default=0.0)
    downtime_seconds = models.FloatField(default=0.0)
    uptime_percentage = models.FloatField(null=True, blank=True, help_text="Empty without heartbeats.")
    bids = models.PositiveIntegerField(default=0)
    contracts_won = models.PositiveIntegerField(default=0)
    contracts_completed = models.PositiveIntegerField(default=0)
    contracts_failed = models.PositiveIntegerField(default=0)
    revenue = models.FloatField(default=0.0)
    avg_bid_price = models.FloatField(null=True, blank=True)
    validation_score = models.FloatField(null=True, blank=True, help_text="The period's average.")
    reputation_score = models.FloatField(null=True, blank=True, help_text="The period's last.")

    class Meta:
        verbose_name_plural = "agent analytics"
        constraints = [models.UniqueConstraint(fields=["org", "agent_id", "period_type", "period_start"],
                                               name="agent_analytics_one_per_period")]
        indexes = [models.Index(fields=["org", "period_type", "period_start"], name="agent_analytics_period")]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.period_type} {self.period_start:%Y-%m-%d %H:%M}"


class PlatformMetrics(PeriodRow):
    users_total = models.PositiveIntegerField(default=0)
    users_active = models.PositiveIntegerField(default=0)
    users_new = models.PositiveIntegerField(default=0)
    users_churned = models.PositiveIntegerField(default=0)
    agents_total = models.PositiveIntegerField(default=0)
    agents_active = models.PositiveIntegerField(default=0)
    agents_new = models.PositiveIntegerField(default=0)
    contracts_total = models.PositiveIntegerField(default=0)
    contracts_active = models.PositiveIntegerField(default=0)
    contracts_completed = models.PositiveIntegerField(default=0)
    contracts_failed = models.PositiveIntegerField(default=0)
    revenue = models.FloatField(default=0.0)
    platform_fees = models.FloatField(default=0.0)
    credits_purchased = models.FloatField(default=0.0)
    credits_spent = models.FloatField(default=0.0)
    avg_response_time_ms = models.FloatField(null=True, blank=True)
    p95_response_time_ms = models.FloatField(null=True, blank=True)
    error_rate = models.FloatField(null=True, blank=True)
    throughput_per_minute = models.FloatField(default=0.0)
    api_calls = models.PositiveIntegerField(default=0)
    orchestrations = models.PositiveIntegerField(default=0)
    fraud_alerts = models.PositiveIntegerField(default=0)
    security_events = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "platform metrics"
        constraints = [models.UniqueConstraint(fields=["org", "period_type", "period_start"],
                                               name="platform_metrics_one_per_period")]

    def __str__(self) -> str:
        return f"{self.org} {self.period_type} {self.period_start:%Y-%m-%d %H:%M}"


class ActivityDirtyPeriod(models.Model):
    """A period whose events changed after it may have been computed (a late or new event): the next
    ``track_analytics`` pass computes it again. ``marked_at`` moves on each new event, so a mark made while
    the period is being computed survives that pass."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    period_type = models.CharField(max_length=5, choices=PeriodType.choices)
    period_start = models.DateTimeField()
    marked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "period_type", "period_start"],
                                               name="activity_dirty_one_per_period")]

    def __str__(self) -> str:
        return f"{self.org} {self.period_type} {self.period_start:%Y-%m-%d %H:%M}"
