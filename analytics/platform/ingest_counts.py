"""What the ingest endpoints received, counted per process (``toolweaver_ingest_*_total`` on /metrics).

These are counters of requests, not of stored rows: no store holds them, so each process counts its own,
and under gunicorn prometheus_client's multiprocess mode sums the workers (docs/exporters.md).
"""

from __future__ import annotations

from analytics.platform.metric_family import MetricFamily, prometheus_metric

# Counted by each process (the API's ingest views); summed over gunicorn workers in multiprocess mode.
INGEST_ITEMS = MetricFamily("toolweaver_ingest_items_total", "Items received by an ingest endpoint, by outcome.",
                            "counter", ("kind", "outcome"))
INGEST_REJECTED = MetricFamily("toolweaver_ingest_rejected_total",
                               "Items of ingest requests rejected as invalid (a bad item rejects its whole batch).",
                               "counter", ("kind",))

_items = prometheus_metric(INGEST_ITEMS)
_rejected = prometheus_metric(INGEST_REJECTED)


def count_received(kind: str, accepted: int, duplicates: int = 0) -> None:
    """``kind``: the endpoint's URL name (a bounded set)."""
    if accepted:
        _items.labels(kind=kind, outcome="accepted").inc(accepted)
    if duplicates:
        _items.labels(kind=kind, outcome="duplicate").inc(duplicates)


def count_rejected(kind: str, items: int) -> None:
    if items:
        _rejected.labels(kind=kind).inc(items)
