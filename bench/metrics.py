"""Metrics at scale: rollups against raw PostgreSQL, measured in the same run.

    python -m bench.metrics [--events 10000000] [--quick]

Starts its own PostgreSQL (like the tests), loads events over 30 days with a fixed
seed (the hot metric has 1M in the last 24 hours; 200 metric names in all), builds
the rollups, and times each question through the query layer beside the raw SQL
that answers it exactly. Writes the section "## Metrics at scale" of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.http import WORKERS
from bench.report import replace_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOT = "api.response_time"
YOUNG = "young.metric"
DAYS = 30
WORK_MEM = "64MB"
REPEATS = 7
# Batch ingest through HTTP: rounds, each of clients × batches × events a batch.
BATCH_ROUNDS, BATCH_CLIENTS, BATCH_BATCHES, BATCH_SIZE = 5, 4, 10, 5000


def median_ms(function, repeats=REPEATS) -> tuple[float, object]:
    function()  # warm
    timings, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), result


def setup_django(database_url: str, data_dir: str) -> None:
    os.environ.update(DATABASE_URL=database_url, TOOLWEAVER_DATA_DIR=data_dir, DJANGO_DEBUG="false",
                      DJANGO_SECRET_KEY="bench-" + "k" * 40, ANALYTICS_LOG_LEVEL="WARNING",
                      ANALYTICS_REQUEST_TRACKING="false", DJANGO_SECURE_SSL="false",
                      DJANGO_SETTINGS_MODULE="toolweaver_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from toolweaver_site.heap import freeze_loaded_heap

    freeze_loaded_heap()  # as the WSGI and Celery worker processes do at start


def load_events(total: int, end: datetime, seed: int = 20261123) -> dict:
    """COPY ``total`` events into the store: the hot metric's 1M in the last 24h (scaled), the rest over 30 days."""
    from django.db import connection

    from analytics.models import MetricSeries, Organization
    from analytics.services.partitions import ensure_partitions

    rng = np.random.default_rng(seed)
    org = Organization.objects.create(slug="bench", name="Bench")
    ensure_partitions(end)  # the day partitions the scheduler's rollup job would have created (PostgreSQL)
    hot_series = [MetricSeries.objects.create(org=org, name=HOT, metric_type="timer", unit="ms",
                                              tags={"endpoint": f"/api/e{i}"}) for i in range(4)]
    other_series = [MetricSeries.objects.create(org=org, name=f"metric.{i:03d}", metric_type="gauge",
                                                tags={"host": f"h{i % 7}"}) for i in range(199)]
    hot_last_day = total // 10
    hot_before = int(total * 0.29)
    others = total - hot_last_day - hot_before
    start = end - timedelta(days=DAYS)
    parts = [
        (hot_last_day, [s.id for s in hot_series], end - timedelta(hours=24), end, 4.6, 0.7),
        (hot_before, [s.id for s in hot_series], start, end - timedelta(hours=24), 4.6, 0.7),
        (others, [s.id for s in other_series], start, end, 3.0, 1.2),
    ]
    staging = "bench_staging"
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE UNLOGGED TABLE {staging} "
                       "(series_id bigint, epoch double precision, value double precision)")
        for count, series_ids, part_start, part_end, mu, sigma in parts:
            for offset in range(0, count, 1_000_000):
                size = min(1_000_000, count - offset)
                ids = rng.choice(series_ids, size)
                epochs = rng.uniform(part_start.timestamp(), part_end.timestamp(), size)
                values = np.round(rng.lognormal(mu, sigma, size), 3)
                with cursor.cursor.copy(f"COPY {staging} FROM STDIN") as copy:
                    for row in zip(ids.tolist(), epochs.tolist(), values.tolist(), strict=True):
                        copy.write_row(row)
        cursor.execute(
            f"INSERT INTO analytics_metricevent (series_id, org_id, timestamp, value) "
            f"SELECT series_id, %s, to_timestamp(epoch), value FROM {staging} ORDER BY epoch", [org.id])
        # As ingest keeps it: each series' first event (the planner plans nothing before it).
        cursor.execute(f"UPDATE analytics_metricseries s SET first_seen = x.first FROM (SELECT series_id, "
                       f"to_timestamp(min(epoch)) AS first FROM {staging} GROUP BY 1) x WHERE s.id = x.series_id")
        cursor.execute(f"DROP TABLE {staging}")
        cursor.execute("ANALYZE analytics_metricevent")
    return {"org": org, "hot_series": [s.id for s in hot_series], "load_seconds": time.perf_counter() - started}


def load_young_metric(org, end: datetime, events: int = 200_000, days: int = 12) -> list[int]:
    """A metric whose events span only the last ``days`` days: a 90-day question over it must cost what its
    30-day one does (the planner answers the empty time before it from nothing, not from raw rows)."""
    from django.db import connection

    from analytics.models import MetricSeries

    series = MetricSeries.objects.create(org=org, name=YOUNG, metric_type="timer", unit="ms",
                                         first_seen=end - timedelta(days=days))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO analytics_metricevent (series_id, org_id, timestamp, value) "
            "SELECT %s, %s, %s - random() * %s * interval '1 day', round((random() * 200)::numeric, 3) "
            "FROM generate_series(1, %s)", [series.id, org.id, end, days, events])
        cursor.execute("ANALYZE analytics_metricevent")
    return [series.id]


def bench_ingest(org, rows: int = 100_000, batch: int = 10_000) -> dict:
    """The batch endpoint (JSON in, validation, dedup, series, COPY) against a bare COPY of the same rows."""
    from django.test import Client

    from analytics.models import ApiToken

    _, raw = ApiToken.issue(org, name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_HOST="localhost")
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    bodies = []
    for first in range(0, rows, batch):
        bodies.append(json.dumps([
            {"metric_name": "bench.ingest", "value": float(v), "metric_type": "timer", "unit": "ms",
             "tags": {"endpoint": f"/e{int(v) % 5}", "method": "GET"},
             "timestamp": now.isoformat(), "event_id": f"bench-{first + i}"}
            for i, v in enumerate(rng.lognormal(4, 1, batch))
        ]))
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/api/v1/analytics/metrics/batch", body, content_type="application/json")
        assert response.status_code == 201, response.content[:300]
    api_seconds = time.perf_counter() - started

    return {"api_rows_per_s": rows / api_seconds, "copy_rows_per_s": bare_copy_rows_per_s(org, rows)}


def bare_copy_rows_per_s(org, rows: int) -> float:
    """The baseline: psycopg's COPY of ``rows`` event rows into a fresh table like the events table."""
    from django.db import connection

    rng = np.random.default_rng(rows)
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_copy (LIKE analytics_metricevent INCLUDING ALL)")
        data = [(1, org.id, now, float(v), f"copy-{i}") for i, v in enumerate(rng.lognormal(4, 1, rows))]
        started = time.perf_counter()
        with cursor.cursor.copy("COPY bench_copy (series_id, org_id, timestamp, value, event_id) FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return rows / seconds


def paired_batch_ingest(url: str, token: str, org) -> dict:
    """BATCH_ROUNDS rounds of a bare COPY then the batch endpoint over HTTP, the same number of rows each:
    the ratio of each round is taken under the same conditions (this VM's speed drifts by a third over
    minutes), and the medians are reported."""
    from bench import http

    rounds = []
    for number in range(BATCH_ROUNDS):
        copy = bare_copy_rows_per_s(org, BATCH_CLIENTS * BATCH_BATCHES * BATCH_SIZE)
        batch = http.batch_ingest(url, token, clients=BATCH_CLIENTS, batches=BATCH_BATCHES, batch=BATCH_SIZE,
                                  prefix=f"http-batch-{number}")
        rounds.append({"copy": copy, "events_per_s": batch["events_per_s"], "ratio": batch["events_per_s"] / copy})
        print(f"batch ingest through HTTP, round {number + 1}: {batch['events_per_s']:.0f} events/s, "
              f"bare COPY {copy:.0f} rows/s ({rounds[-1]['ratio']:.2f}×)", flush=True)
    ratios = sorted(r["ratio"] for r in rounds)
    return {"events": BATCH_CLIENTS * BATCH_BATCHES * BATCH_SIZE, "clients": BATCH_CLIENTS, "batch": BATCH_SIZE,
            "rounds": len(rounds), "events_per_s": statistics.median(r["events_per_s"] for r in rounds),
            "copy_rows_per_s": statistics.median(r["copy"] for r in rounds),
            "ratio": statistics.median(ratios), "ratio_low": ratios[0], "ratio_high": ratios[-1]}


INGEST_STEPS = ["parse and validate the JSON", "event-id check", "series lookup", "COPY", "last seen", "dirty marks"]


def ingest_steps(org, rows: int = 100_000, batch: int = 10_000) -> dict:
    """What each step of the batch endpoint costs per event: the steps of ingest_metric_items run one by one
    on the same bodies the endpoint gets (fresh event ids), each timed, beside the whole request."""
    from django.db import transaction
    from django.utils import timezone

    from analytics.models import MetricEvent
    from analytics.platform.contracts import validate_json_array
    from analytics.services import metrics_ingest as ingest
    from analytics.services.rollups import mark_dirty

    rng = np.random.default_rng(11)
    now = datetime.now(UTC)
    bodies = [json.dumps([
        {"metric_name": "bench.steps", "value": float(v), "metric_type": "timer", "unit": "ms",
         "tags": {"endpoint": f"/e{int(v) % 5}", "method": "GET"}, "timestamp": now.isoformat(),
         "event_id": f"steps-{first + i}"} for i, v in enumerate(rng.lognormal(4, 1, batch))]).encode()
        for first in range(0, rows, batch)]
    seconds = dict.fromkeys(INGEST_STEPS, 0.0)

    def timed(step, function, *args):
        started = time.perf_counter()
        result = function(*args)
        seconds[step] += time.perf_counter() - started
        return result

    for body in bodies:
        with transaction.atomic():
            # As the endpoint takes a JSON array: validated from the bytes.
            items = timed("parse and validate the JSON", validate_json_array, ingest.MetricItem, body)
            fresh = timed("event-id check", ingest.drop_duplicates, MetricEvent, org, items)
            series = timed("series lookup", ingest._series_for, org, fresh)
            series_ids = [series[item.series_key].id for item in fresh]
            timed("COPY", ingest._insert_events, [(series_id, org.id, item.timestamp, item.value, item.event_id)
                                                  for series_id, item in zip(series_ids, fresh, strict=True)])
            timed("last seen", ingest._update_last_seen, series, fresh)
            timed("dirty marks", mark_dirty, zip(series_ids, (item.timestamp for item in fresh), strict=True),
                  timezone.now())
    return {step: value / rows * 1e6 for step, value in seconds.items()}


def raw_statistics(series_ids, start, end):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(value), min(value), max(value), "
            "percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY value) "
            "FROM analytics_metricevent WHERE series_id = ANY(%s) AND timestamp >= %s AND timestamp <= %s",
            [series_ids, start, end])
        return cursor.fetchone()


def raw_hourly(series_ids, start, end, aggregate):
    from django.db import connection

    expression = "avg(value)" if aggregate == "avg" else "percentile_cont(0.95) WITHIN GROUP (ORDER BY value)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('hour', timestamp) AS bucket, {expression} FROM analytics_metricevent "
            "WHERE series_id = ANY(%s) AND timestamp >= %s AND timestamp < %s GROUP BY 1 ORDER BY 1",
            [series_ids, start, end])
        return dict(cursor.fetchall())


def relative_error(estimate, exact):
    return abs(estimate - exact) / abs(exact) if exact else 0.0


def run(total: int, http_requests: int = 2000) -> dict:
    from tests.servers import start_postgres

    server = start_postgres({"work_mem": WORK_MEM, "shared_buffers": "512MB"})
    data_dir = tempfile.mkdtemp(prefix="tw-bench-")
    try:
        setup_django(server.url("postgres"), data_dir)
        from django.db import connection

        from analytics.services.rollups import rollup_metrics

        with connection.cursor() as cursor:
            cursor.execute(f"SET work_mem = '{WORK_MEM}'")
        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
        loaded = load_events(total, end)
        org, hot_ids = loaded["org"], loaded["hot_series"]
        young_ids = load_young_metric(org, end)
        print(f"loaded {total:,} events in {loaded['load_seconds']:.0f}s", flush=True)

        started = time.perf_counter()
        rollup_metrics(now=end - timedelta(hours=1))
        initial_build = time.perf_counter() - started
        started = time.perf_counter()
        refreshed = rollup_metrics(now=end + timedelta(minutes=1, seconds=30))
        refresh = time.perf_counter() - started
        # The job as beat runs it every minute: one more minute has closed, and nothing arrived in it.
        idle = []
        for minute in range(2, 2 + 5):
            started = time.perf_counter()
            rollup_metrics(now=end + timedelta(minutes=minute, seconds=30))
            idle.append((time.perf_counter() - started) * 1000)
        print(f"rollups built in {initial_build:.0f}s; last hour refreshed in {refresh * 1000:.0f} ms; "
              f"idle run {statistics.median(idle):.0f} ms", flush=True)

        results = {"total": total, "initial_build_s": initial_build, "refresh_ms": refresh * 1000,
                   "refresh_rows": refreshed, "idle_ms": statistics.median(idle), "errors": []}
        results.update(in_process_reads(org, hot_ids, young_ids, end, results["errors"]))
        results["ingest"] = bench_ingest(org)
        results["ingest_steps"] = ingest_steps(org)
        print(f"ingest: {results['ingest']['api_rows_per_s']:.0f} rows/s vs COPY "
              f"{results['ingest']['copy_rows_per_s']:.0f} rows/s", flush=True)
        results["http"] = through_http(server.url("postgres"), org, end, http_requests)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            results["postgres"] = cursor.fetchone()[0]
        return results
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()


YOUNG_PAIR = ("young_30d", "young_90d")
# The questions asked both in process and through HTTP: (key, metric, window length, kind, aggregate).
QUESTIONS = [
    ("stats_24h", HOT, timedelta(hours=24), "statistics", None),
    ("stats_30d", HOT, timedelta(days=DAYS), "statistics", None),
    ("series_avg", HOT, timedelta(days=DAYS), "series", "avg"),
    ("series_p95", HOT, timedelta(days=DAYS), "series", "p95"),
    ("young_30d", YOUNG, timedelta(days=30), "statistics", None),
    ("young_90d", YOUNG, timedelta(days=90), "statistics", None),
]


def in_process_reads(org, hot_ids, young_ids, end: datetime, errors: list) -> dict:
    """Each question through the query layer, beside the raw SQL answering it exactly; checks the answers."""
    from analytics.platform.windows import Window
    from analytics.services import metrics_query as query

    results = {}
    for key, metric, span, kind, aggregate in QUESTIONS:
        window = Window(end - span, end)
        ids = hot_ids if metric == HOT else young_ids
        if kind == "statistics":
            fast_ms, stats = median_ms(lambda w=window, m=metric: query.statistics(m, w, org=org))
            raw_ms, exact = median_ms(lambda w=window, i=ids: raw_statistics(i, w.start, w.end), repeats=3)
            assert stats.count == exact[0] and stats.min == exact[2] and stats.max == exact[3], (key, stats, exact)
            assert abs(stats.sum - exact[1]) <= 1e-6 * abs(exact[1])
            worst = max(relative_error(getattr(stats, n), e)
                        for n, e in zip(("p50", "p95", "p99"), exact[4], strict=True))
            results[key] = {"ms": fast_ms, "raw_ms": raw_ms, "source": stats.source, "count": stats.count,
                            "worst_error": worst}
            errors.append(worst)
        else:
            fast_ms, series = median_ms(
                lambda w=window, a=aggregate: query.time_series(HOT, w, interval="1h", aggregate=a, org=org))
            raw_ms, exact = median_ms(lambda w=window, a=aggregate: raw_hourly(hot_ids, w.start, w.end, a), repeats=3)
            worst = 0.0
            for moment, value in series.points:
                if moment in exact and moment >= window.start and moment + timedelta(hours=1) <= window.end:
                    worst = max(worst, relative_error(value, exact[moment]))
            results[key] = {"ms": fast_ms, "raw_ms": raw_ms, "source": series.source,
                            "points": len(series.points), "worst_error": worst}
            if aggregate == "p95":
                errors.append(worst)
        print(f"{key}: {fast_ms:.1f} ms ({results[key]['source']}) vs raw {raw_ms:.0f} ms", flush=True)
    return results


def through_http(database_url: str, org, end: datetime, requests: int) -> dict:
    """The same questions, single events and concurrent batches through gunicorn (bench.http)."""
    from analytics.models import ApiToken
    from bench import http

    _, token = ApiToken.issue(org, name="bench-http")
    results: dict = {}
    with http.platform_server(database_url) as url:
        client = http.Client(url, token)
        for key, metric, span, kind, aggregate in QUESTIONS:
            window = {"start": (end - span).isoformat(), "end": end.isoformat()}
            if key in YOUNG_PAIR:
                continue
            if kind == "statistics":
                ms, answer = http.timed_get(client, f"/api/v1/analytics/metrics/{metric}/statistics", REPEATS,
                                            **window)
            else:
                ms, answer = http.timed_get(client, f"/api/v1/analytics/metrics/{metric}/time-series", REPEATS,
                                            interval="1h", aggregate=aggregate, **window)
            results[key] = {"ms": ms, "source": answer["source"]}
            print(f"{key} through HTTP: {ms:.1f} ms ({answer['source']})", flush=True)
        # The young metric's two windows are compared with each other: asked in turn, so that both medians
        # come from the same minutes of this VM.
        path = f"/api/v1/analytics/metrics/{YOUNG}/statistics"
        windows = {key: {"start": (end - span).isoformat(), "end": end.isoformat()}
                   for key, _, span, _, _ in QUESTIONS if key in YOUNG_PAIR}
        timings: dict[str, list[float]] = {key: [] for key in YOUNG_PAIR}
        for key in YOUNG_PAIR:
            client.get_json(path, **windows[key])  # warm
        for _ in range(REPEATS * 3):
            for key in YOUNG_PAIR:
                started = time.perf_counter()
                answer = client.get_json(path, **windows[key])
                timings[key].append((time.perf_counter() - started) * 1000)
                results[key] = {"ms": statistics.median(timings[key]), "source": answer["source"]}
        for key in YOUNG_PAIR:
            print(f"{key} through HTTP: {results[key]['ms']:.1f} ms ({results[key]['source']})", flush=True)
        results["single"] = http.single_events(client, requests, "http-single")
        client.close()
        print(f"single events through HTTP: p50 {results['single']['p50_ms']:.1f} ms, "
              f"p99 {results['single']['p99_ms']:.1f} ms", flush=True)
        results["batch"] = paired_batch_ingest(url, token, org)
    return results


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}){memory}, {platform.system()} {platform.release()}"


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def report(results: dict) -> str:
    import django
    import psycopg

    http = results["http"]

    def row(key, what, target_ms, target_ratio):
        fast, through, raw = results[key]["ms"], http[key]["ms"], results[key]["raw_ms"]
        ratio = raw / through if through else float("inf")
        return (f"| {what} | {fast:.1f} ms | {through:.1f} ms | {raw:.0f} ms | {ratio:,.0f}× | "
                f"≤ {target_ms} ms and ≥ {target_ratio}× | {verdict(through <= target_ms and ratio >= target_ratio)} |")

    young_30, young_90 = http["young_30d"], http["young_90d"]
    young_met = young_90["source"] == "rollup" and young_90["ms"] <= young_30["ms"] + 2
    ingest, batch, single = results["ingest"], http["batch"], http["single"]
    copy = ingest["copy_rows_per_s"]
    worst = max(results["errors"])
    lines = [
        "## Metrics at scale",
        "",
        f"`make bench` on {datetime.now(UTC):%Y-%m-%d}: {machine()}; PostgreSQL {results['postgres']} "
        f"(work_mem {WORK_MEM}, started by the bench); Python {platform.python_version()}, Django "
        f"{django.get_version()}, psycopg {psycopg.__version__}, numpy {np.__version__}.",
        "",
        f"Data: {results['total']:,} events over {DAYS} days, 200 metric names; the hot metric `{HOT}` has "
        f"{results['stats_24h']['count']:,} events in the last 24 hours and {results['stats_30d']['count']:,} in "
        f"30 days; `{YOUNG}` has {results['young_30d']['count']:,} events over its first 12 days. Each read is "
        f"the median of {REPEATS} warm runs (raw: 3): in process through the query layer, and through HTTP "
        f"(`GET metrics/{{name}}/statistics` and `/time-series` with the same start and end, gunicorn "
        f"{WORKERS} workers × 2 threads, request tracking on, one keep-alive client), beside the raw SQL that "
        "answers the same question exactly, all in the same run. "
        f"Through HTTP `{YOUNG}`'s two windows are asked in turn, {REPEATS * 3} times each. "
        "The speed-up is raw against HTTP.",
        "",
        "| question | in process | through HTTP | raw PostgreSQL | speed-up | target (HTTP) | |",
        "|---|---|---|---|---|---|---|",
        row("stats_24h", "statistics, 24 h (count, sum, min, max, p50, p95, p99)", 10, 30),
        row("stats_30d", "statistics, 30 days", 15, 100),
        row("series_avg", "hourly series over 30 days, avg", 20, 100),
        row("series_p95", "hourly series over 30 days, p95", 20, 100),
        row("young_30d", f"`{YOUNG}` (12 days old), statistics over 30 days", 15, 1),
        f"| `{YOUNG}`, statistics over 90 days | {results['young_90d']['ms']:.1f} ms "
        f"({results['young_90d']['source']}) | {young_90['ms']:.1f} ms ({young_90['source']}) | "
        f"{results['young_90d']['raw_ms']:.0f} ms | — | from rollups, within 2 ms of its 30-day answer | "
        f"{verdict(young_met)} |",
        "",
        "| ingest and jobs | measured | baseline | ratio | target | |",
        "|---|---|---|---|---|---|",
        f"| batch ingest through HTTP, {batch['clients']} clients × {batch['batch']:,}-event batches "
        f"({batch['events']:,} events a round; median of {batch['rounds']} rounds, each after its own bare COPY) | "
        f"{batch['events_per_s']:,.0f} events/s | bare COPY {batch['copy_rows_per_s']:,.0f} rows/s | "
        f"{batch['ratio']:.2f}× (rounds {batch['ratio_low']:.2f}-{batch['ratio_high']:.2f}) | ≥ 0.4× COPY | "
        f"{verdict(batch['ratio'] >= 0.4)} |",
        f"| batch ingest in process, 1 client × 10,000-event batches | {ingest['api_rows_per_s']:,.0f} events/s | "
        f"bare COPY {copy:,.0f} rows/s | {ingest['api_rows_per_s'] / copy:.2f}× | — | |",
        f"| single-event `POST metrics/record` through HTTP, 1 client, {single['requests']:,} requests | "
        f"p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms | — | — | p99 ≤ 10 ms | "
        f"{verdict(single['p99_ms'] <= 10)} |",
        f"| `rollup_metrics` with nothing new (a minute closed, no events in it; median of 5) | "
        f"{results['idle_ms']:.0f} ms | — | — | ≤ 200 ms | {verdict(results['idle_ms'] <= 200)} |",
        f"| rollup refresh of the last hour (every metric: {results['refresh_rows']['minute_rows']:,} minute rows, "
        f"{results['refresh_rows']['hour_rows']:,} hour rows) | {results['refresh_ms']:.0f} ms | — | — | — | |",
        f"| first rollup build of all {DAYS} days | {results['initial_build_s']:.0f} s | — | — | ≤ 60 s | "
        f"{verdict(results['initial_build_s'] <= 60)} |",
        "",
        "What batch ingest costs per event, step by step (the steps of `ingest_metric_items` run one by one on "
        "100,000 events in 10,000-event bodies, in process; the bare COPY of one row costs "
        f"{1e6 / copy:.1f} µs):",
        "",
        "| step | µs per event |",
        "|---|---|",
        *[f"| {step} | {cost:.1f} |" for step, cost in results["ingest_steps"].items()],
        f"| all steps | {sum(results['ingest_steps'].values()):.1f} |",
        f"| the whole request in process (1 client; adds Django, DRF, auth and the response) | "
        f"{1e6 / ingest['api_rows_per_s']:.1f} |",
        "",
        f"Worst relative quantile error (p50/p95/p99 of every statistics row, every hourly p95 point): "
        f"**{worst * 100:.3f}%** (target ≤ 1%: {verdict(worst <= 0.01)}). Counts, sums, min and max were checked "
        "equal to the raw answers.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=2000, help="Single-event requests through HTTP.")
    parser.add_argument("--no-write", action="store_true", help="Print the report, leave docs/ alone.")
    args = parser.parse_args(argv)
    results = run(args.events, args.requests)
    section = report(results)
    print(section)
    if not args.no_write:
        print(f"written to {replace_section('## Metrics at scale', section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
