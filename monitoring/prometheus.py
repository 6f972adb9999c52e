"""``/metrics``: the process's own metrics plus everything the store holds (docs/exporters.md).

Two kinds of families are exposed:

- **Store families**, read from the database at scrape time by each app's ``exposition.exposed_families(now)``
  (skills, platform analytics, services, alerts). Every gunicorn worker reads the same rows, so whichever
  worker answers, the values are the same; an execution posted through the API by any process is counted.
- **Process families**: django-prometheus's request and database metrics and the ingest counters. Each
  process counts its own; with ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn with several workers),
  prometheus_client's multiprocess mode sums the workers' files.

Each store family holds at most PROMETHEUS_MAX_SERIES_PER_FAMILY label sets, the busiest kept;
``toolweaver_exposition_series_dropped`` counts what was left out.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from analytics.metric_families import EXPOSITION_DROPPED, Exposed, Sample
from analytics.platform.collectors import app_modules


def _capped(exposed: list[Exposed], limit: int) -> list[Exposed]:
    """At most ``limit`` samples per family: the heaviest, or those its ``rank_by`` family kept."""
    kept_labels: dict[str, set[tuple[str, ...]]] = {}
    dropped = Exposed(EXPOSITION_DROPPED)
    capped = []
    # Families that others rank by come first, so their choice is known when the followers are cut.
    for item in sorted(exposed, key=lambda item: item.rank_by is not None):
        samples = item.samples
        if item.rank_by is not None and item.rank_by.name in kept_labels:
            keep = kept_labels[item.rank_by.name]
            samples = [sample for sample in samples if sample.labels in keep]
        elif len(samples) > limit:
            heaviest = sorted(samples, key=lambda sample: sample.weight, reverse=True)[:limit]
            keep = {sample.labels for sample in heaviest}
            samples = [sample for sample in samples if sample.labels in keep]
        kept_labels[item.family.name] = {sample.labels for sample in samples}
        if len(samples) < len(item.samples):
            dropped.samples.append(Sample((item.family.name,), len(item.samples) - len(samples)))
        capped.append(Exposed(item.family, samples, item.rank_by))
    order = {item.family.name: index for index, item in enumerate(exposed)}
    return [*sorted(capped, key=lambda item: order[item.family.name]), dropped]


def exposed_families(now: datetime | None = None) -> list[Exposed]:
    """Every installed app's store families, as /metrics and the OTLP push show them."""
    now = now or timezone.now()
    exposed = [item for module in app_modules("exposition") for item in module.exposed_families(now)]
    return _capped(exposed, settings.PROMETHEUS_MAX_SERIES_PER_FAMILY)


def _prometheus_family(item: Exposed) -> Metric:
    family = item.family
    if family.kind == "histogram":
        histogram = HistogramMetricFamily(family.name, family.help, labels=family.labels)
        bounds = [str(bound) for bound in family.buckets] + ["+Inf"]
        for sample in item.samples:
            cumulative, running = [], 0
            for bound, count in zip(bounds, sample.buckets, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            histogram.add_metric(list(sample.labels), cumulative, sample.total)
        return histogram
    metric: CounterMetricFamily | GaugeMetricFamily
    if family.kind == "counter":
        metric = CounterMetricFamily(family.name, family.help, labels=family.labels)  # it splits off _total
    else:
        metric = GaugeMetricFamily(family.name, family.help, labels=family.labels)
    for sample in item.samples:
        metric.add_metric(list(sample.labels), sample.value)
    return metric


class _Fixed(Collector):
    """Metrics already read (the store's, once per scrape)."""

    def __init__(self, metrics: list[Metric]):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def process_registry() -> CollectorRegistry:
    """This process's metrics, or all workers' when prometheus_client's multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


class _ProcessCollector(Collector):
    """The process registry without the families the store exposes: a ``PrometheusBackend`` created inside
    Django (instead of the store-backed one ``create_analytics_client`` gives there) must not repeat them."""

    def __init__(self, registry: CollectorRegistry, store_names: set[str]):
        self.registry, self.store_names = registry, store_names

    def collect(self) -> Iterator[Metric]:
        return (metric for metric in self.registry.collect() if metric.name not in self.store_names)


def exposition() -> bytes:
    """The text of a scrape: the process families, then the store families."""
    store_families = [_prometheus_family(item) for item in exposed_families()]
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_ProcessCollector(process_registry(), {family.name for family in store_families}))
    scrape.register(_Fixed(store_families))
    return generate_latest(scrape)


def _authorized(request: HttpRequest) -> bool:
    token = settings.PROMETHEUS_METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        response = HttpResponse("Send Authorization: Bearer <PROMETHEUS_METRICS_TOKEN>.\n", status=401,
                                content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
