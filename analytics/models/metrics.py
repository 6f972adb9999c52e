"""Custom metrics: a series per (org, name, type, unit, source, tag set), and narrow raw events.

Tags are normalised into ``MetricSeriesTag`` rows so that filters and group-bys
resolve series through indexed columns; events then carry only a series id, a
time and a value.
"""

from __future__ import annotations

import functools

from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics.platform.tenancy import Organization


class MetricType(models.TextChoices):
    COUNTER = "counter", "counter (an increment)"
    GAUGE = "gauge", "gauge (a point-in-time value)"
    HISTOGRAM = "histogram", "histogram (a sample of a distribution)"
    TIMER = "timer", "timer (a duration sample)"


def canonical_tags(tags: dict[str, str]) -> str:
    """One string per tag set, the same whatever the key order: ``k1=v1\\x1fk2=v2``."""
    return _canonical(tuple(tags.items()))


@functools.lru_cache(maxsize=65536)
def _canonical(pairs: tuple[tuple[str, str], ...]) -> str:
    # Memoised: ingest asks it for every event, and a batch's events share a few tag sets.
    return "\x1f".join(f"{key}={value}" for key, value in sorted(pairs))


class MetricSeries(models.Model):
    # org is null for the platform scope (requests by staff or anonymous callers).
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    metric_type = models.CharField(max_length=16, choices=MetricType.choices, default=MetricType.GAUGE)
    unit = models.CharField(max_length=32, blank=True)
    source = models.CharField(max_length=100, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    tag_key = models.TextField(blank=True, editable=False)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    last_value = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "metric series"
        constraints = [
            # Coalesce: the platform scope (org NULL) is one scope, on SQLite and PostgreSQL alike.
            models.UniqueConstraint(
                Coalesce(F("org"), Value(0)), F("name"), F("metric_type"), F("unit"), F("source"), F("tag_key"),
                name="metric_series_identity",
            ),
        ]
        indexes = [models.Index(fields=["name", "org"], name="metric_series_name_org")]

    def __str__(self) -> str:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(self.tags.items()))
        return f"{self.name}{{{tags}}}" if tags else self.name

    def save(self, *args, **kwargs):
        self.tag_key = canonical_tags(self.tags)
        super().save(*args, **kwargs)


class MetricSeriesTag(models.Model):
    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="tag_rows")
    key = models.CharField(max_length=64)
    value = models.CharField(max_length=256)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "key"], name="metric_series_tag_unique")]
        indexes = [models.Index(fields=["key", "value", "series"], name="metric_tag_lookup")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class MetricEvent(models.Model):
    """One recorded value. Kept for ANALYTICS_DB_RETENTION_DAYS; rollups outlive it.

    On PostgreSQL the table is partitioned by day on ``timestamp`` (migration 0009,
    analytics/services/partitions.py). There it has no PRIMARY KEY constraint but a unique index on
    (id, timestamp) (a partitioned table's unique index must include the partition key; migration 0009 says
    why not a constraint); Django's primary key is ``id``, unique since one identity sequence feeds every
    partition. The event ids an org stored live in
    ``MetricEventKey``, not in a unique index here: a partitioned table's unique indexes must include the
    partition key, so (org, event_id) cannot be unique on it.
    """

    # No database-level foreign keys on this high-volume table: PostgreSQL checks each one per row at
    # commit, which costs more than the insert itself. Ingest creates the series in the same
    # transaction, and Django still cascades deletes.
    # No index of its own: metric_event_series_time starts with it.
    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="events", db_constraint=False,
                               db_index=False)
    # Denormalised from the series: an org's events are read and deleted without a join.
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            db_constraint=False)
    timestamp = models.DateTimeField()
    value = models.FloatField()
    event_id = models.CharField(max_length=128, null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["series", "timestamp"], name="metric_event_series_time"),
            models.Index(fields=["timestamp"], name="metric_event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.timestamp:%Y-%m-%d %H:%M:%S}={self.value}"


class MetricEventKey(models.Model):
    """An event id an org (or the platform) stored in ``MetricEvent``: the dedup of metric ingest.

    Ingest claims the ids of a batch here with one insert (``ON CONFLICT DO NOTHING RETURNING`` unless all
    of a large batch's ids are new) in the transaction that writes the events, so the answer says which ids
    are new and a concurrent writer of the same id waits for the first one's commit
    (analytics/services/metrics_ingest.py, ``drop_duplicates``).
    Retention removes a key with its event (``timestamp`` is the event's). The same table on SQLite and
    PostgreSQL; on PostgreSQL it stays unpartitioned, so that (org, event_id) is unique across days.
    """

    pk = models.CompositePrimaryKey("org_key", "event_id")
    # The org's id, 0 for the platform scope: a primary key column cannot be NULL. No foreign key: a deleted
    # org's keys go with retention (PostgreSQL and SQLite never hand out an org id twice).
    org_key = models.BigIntegerField()
    event_id = models.CharField(max_length=128)
    timestamp = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["timestamp"], name="metric_event_key_time")]

    def __str__(self) -> str:
        return f"{self.org_key}:{self.event_id}"
