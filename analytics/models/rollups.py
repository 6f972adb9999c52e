"""Rollups of metric events: per minute, hour, day and week, each with count, sum, min, max and a sketch.

A row covers one series (``series`` set) or every series of a metric name in an
org (``series`` null: what an untagged question reads). ``RollupState`` says which
buckets of each tier are built; ``DirtyMinute`` marks minutes that received events
after they may have been rolled up, so the next run rebuilds them and the query
layer reads them raw meanwhile.
"""

from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce

from analytics.models.metrics import MetricSeries
from analytics.platform.tenancy import Organization


class RollupTier(models.IntegerChoices):
    MINUTE = 60, "minute"
    HOUR = 3600, "hour"
    DAY = 86400, "day"
    WEEK = 604800, "week"  # from Monday 00:00 UTC, as ISO weeks


class MetricRollup(models.Model):
    tier = models.PositiveIntegerField(choices=RollupTier.choices)
    # Derived rows, written in bulk: no database-level foreign keys (see MetricEvent).
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            db_constraint=False)
    name = models.CharField(max_length=200)
    # No index of its own: metric_rollup_by_series starts with it (a first build writes a row per event).
    series = models.ForeignKey(MetricSeries, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                               db_constraint=False, db_index=False)
    bucket_start = models.DateTimeField()
    count = models.BigIntegerField()
    sum = models.FloatField()
    min = models.FloatField()
    max = models.FloatField()
    # Read directly by percentile time series: no sketch merge when one row answers a bucket.
    p50 = models.FloatField(null=True)
    p95 = models.FloatField(null=True)
    p99 = models.FloatField(null=True)
    sketch = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tier", "series", "bucket_start"], condition=Q(series__isnull=False),
                                    name="metric_rollup_series_bucket"),
            models.UniqueConstraint(Coalesce(F("org"), Value(0)), F("name"), F("tier"), F("bucket_start"),
                                    condition=Q(series__isnull=True), name="metric_rollup_name_bucket"),
        ]
        indexes = [
            models.Index(fields=["name", "tier", "org", "bucket_start"], condition=Q(series__isnull=True),
                         name="metric_rollup_by_name"),
            models.Index(fields=["series", "tier", "bucket_start"], name="metric_rollup_by_series"),
            models.Index(fields=["tier", "bucket_start"], name="metric_rollup_by_time"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.get_tier_display()} {self.bucket_start:%Y-%m-%d %H:%M}"


class RollupState(models.Model):
    """Buckets of ``tier`` in [built_from, built_until) exist and are complete (except dirty minutes)."""

    tier = models.PositiveIntegerField(choices=RollupTier.choices, unique=True)
    built_from = models.DateTimeField()
    built_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.get_tier_display()}: {self.built_from:%Y-%m-%d %H:%M} – {self.built_until:%Y-%m-%d %H:%M}"


class DirtyMinute(models.Model):
    """A series received an event for this minute after the minute may have been rolled up."""

    minute = models.DateTimeField()
    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="+", db_constraint=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["minute", "series"], name="dirty_minute_unique")]
        indexes = [models.Index(fields=["series", "minute"], name="dirty_minute_by_series")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} (series {self.series_id})"
