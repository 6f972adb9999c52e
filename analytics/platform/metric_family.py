"""A metric family as every exporter builds it: name, help, kind, labels, unit, buckets (DESIGN.md, Expose).

The declarations are in analytics/metric_families.py (the skill families), each app's ``exposition.py`` and
analytics/platform/ingest_counts.py. ``Exposed`` is what an app's ``exposition.exposed_families(now)``
returns: a family and its current samples, read from the store at scrape (or push) time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MetricFamily:
    name: str  # as exposed to Prometheus, suffix included
    help: str
    kind: str  # "counter" | "gauge" | "histogram"
    labels: tuple[str, ...]
    unit: str = ""  # UCUM unit for OpenTelemetry
    buckets: tuple[float, ...] = ()  # histogram bucket upper bounds


@dataclass(frozen=True)
class Sample:
    """One label set of a family: ``labels`` in the family's label order. Histograms carry ``buckets`` (the
    count of values in each bucket of ``family.buckets``, then above the last bound) and ``total`` (their sum)."""

    labels: tuple[str, ...]
    value: float = 0.0
    buckets: tuple[int, ...] = ()
    total: float = 0.0

    @property
    def weight(self) -> float:
        """What ranks a label set when a family holds too many: its count, or its value."""
        return float(sum(self.buckets)) if self.buckets else self.value


@dataclass
class Exposed:
    family: MetricFamily
    samples: list[Sample] = field(default_factory=list)
    # Families whose samples must stay in step (executions, successes and failures of the same skills) share a
    # ranking: the collector keeps the label sets of the ``rank_by`` family's busiest samples.
    rank_by: MetricFamily | None = None


def prometheus_metric(family: MetricFamily, registry=None):
    """The family as a prometheus_client collector, registered in ``registry`` (default: the process's)."""
    from prometheus_client import REGISTRY, Counter, Gauge, Histogram

    registry = REGISTRY if registry is None else registry
    if family.kind == "counter":
        return Counter(family.name, family.help, family.labels, registry=registry)
    if family.kind == "gauge":
        return Gauge(family.name, family.help, family.labels, registry=registry)
    return Histogram(family.name, family.help, family.labels, buckets=family.buckets, registry=registry)
