"""State of the OTLP metrics intake (analytics/services/otlp_metrics.py).

A cumulative OTLP series (a monotonic Sum, a Histogram, a Summary with temporality CUMULATIVE) reports
totals since its start time; the platform stores increments. ``OtlpCumulativeState`` keeps, per series,
the last total seen, so that the next total can be turned into an increment, restarts of the exporting
process detected — and a repeated export recognised — after a restart of the platform too.
"""

from __future__ import annotations

from django.db import models

from analytics.platform.tenancy import Organization


class OtlpCumulativeState(models.Model):
    """The last point of one cumulative series: (org, metric name as sent, hash of its sorted tags).

    ``time_unix_nano`` 0 means "no point yet" (a row is created just before its first point is applied,
    so that concurrent exporters of the same series lock the same row). For histograms and summaries
    ``value`` is the count and ``sum`` the sum; ``buckets`` holds a histogram's explicit bounds and
    cumulative bucket counts, from which the next point's per-interval quantiles are estimated.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    metric_name = models.CharField(max_length=200)
    tags_hash = models.CharField(max_length=40, help_text="sha1 of the series' sorted tags")
    start_time_unix_nano = models.BigIntegerField(default=0, help_text="0: not sent")
    time_unix_nano = models.BigIntegerField(default=0, help_text="time of the last point; 0: none yet")
    value = models.FloatField(default=0.0, help_text="last cumulative value (a histogram's count)")
    sum = models.FloatField(null=True, blank=True, help_text="last cumulative sum of a histogram or summary")
    buckets = models.JSONField(null=True, blank=True, help_text='{"bounds": [...], "counts": [...]}')
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "OTLP cumulative series state"
        verbose_name_plural = "OTLP cumulative series states"
        constraints = [
            models.UniqueConstraint(fields=["org", "metric_name", "tags_hash"], name="otlp_cumulative_series"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_name} [{self.tags_hash[:8]}] = {self.value}"
