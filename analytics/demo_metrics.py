"""Demo metrics: 30 days of API latency, queue depth, job counts and CPU, with a daily pattern."""

import math
from datetime import timedelta

from analytics.models import MetricSeries, MetricType, Organization
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

ENDPOINTS = [("/api/agents", "GET", 45.0), ("/api/contracts", "POST", 180.0), ("/api/search", "GET", 95.0)]
CHUNK = 10_000


def _daily(moment) -> float:
    """0..1, peaking in the working day (14:00 UTC)."""
    return 0.5 + 0.5 * math.cos((moment.hour + moment.minute / 60 - 14) / 24 * 2 * math.pi)


def _every(context, step: timedelta):
    moment = context.now - timedelta(days=context.days)
    while moment < context.now:
        yield moment
        moment += step


def demo_items(context, scale: float):
    rng = context.rng
    for moment in context.moments(per_hour=40 * scale):
        endpoint, method, typical = rng.choice(ENDPOINTS)
        failed = rng.random() < 0.02 + 0.03 * _daily(moment)
        latency = rng.lognormvariate(math.log(typical * (1 + _daily(moment))), 0.45)
        yield MetricItem("api.response_time", round(latency, 2), MetricType.TIMER, "ms", "demo",
                         {"endpoint": endpoint, "method": method, "status": "500" if failed else "200"}, moment)
    for moment in _every(context, timedelta(minutes=5)):
        depth = max(0.0, 120 * _daily(moment) * scale + rng.gauss(0, 8))
        yield MetricItem("queue.depth", round(depth), MetricType.GAUGE, "items", "demo", {"queue": "orders"}, moment)
        yield MetricItem("jobs.processed", rng.randint(20, 60) * (0.3 + _daily(moment)) // 1, MetricType.COUNTER,
                         "jobs", "demo", {"worker": rng.choice(["w1", "w2"])}, moment)
    for moment in _every(context, timedelta(minutes=10)):
        for host in ("web-1", "web-2"):
            usage = min(100.0, max(2.0, 25 + 50 * _daily(moment) + rng.gauss(0, 6)))
            yield MetricItem("cpu.usage", round(usage, 1), MetricType.GAUGE, "percent", "demo", {"host": host}, moment)


def seed_metrics(context) -> None:
    for scale, slug in ((1.0, "acme"), (0.4, "globex")):
        org = Organization.objects.get(slug=slug)
        if MetricSeries.objects.filter(org=org, source="demo").exists():
            continue
        chunk, total = [], 0
        for item in demo_items(context, scale):
            chunk.append(item)
            if len(chunk) == CHUNK:
                total += ingest_metric_items(org, chunk).accepted
                chunk = []
        total += ingest_metric_items(org, chunk).accepted
        context.log(f"demo metrics for {slug}: {total} events")
