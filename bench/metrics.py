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

from bench.report import replace_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOT = "api.response_time"
DAYS = 30
WORK_MEM = "64MB"
REPEATS = 7


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


def load_events(total: int, end: datetime, seed: int = 20261123) -> dict:
    """COPY ``total`` events into the store: the hot metric's 1M in the last 24h (scaled), the rest over 30 days."""
    from django.db import connection

    from analytics.models import MetricSeries, Organization

    rng = np.random.default_rng(seed)
    org = Organization.objects.create(slug="bench", name="Bench")
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
        cursor.execute(f"DROP TABLE {staging}")
        cursor.execute("ANALYZE analytics_metricevent")
    return {"org": org, "hot_series": [s.id for s in hot_series], "load_seconds": time.perf_counter() - started}


def bench_ingest(org, rows: int = 100_000, batch: int = 10_000) -> dict:
    """The batch endpoint (JSON in, validation, dedup, series, COPY) against a bare COPY of the same rows."""
    from django.db import connection
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

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_copy (LIKE analytics_metricevent INCLUDING ALL)")
        data = [(1, org.id, now, float(v), f"copy-{i}") for i, v in enumerate(rng.lognormal(4, 1, rows))]
        started = time.perf_counter()
        with cursor.cursor.copy("COPY bench_copy (series_id, org_id, timestamp, value, event_id) FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        copy_seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return {"api_rows_per_s": rows / api_seconds, "copy_rows_per_s": rows / copy_seconds}


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


def run(total: int) -> dict:
    from tests.servers import start_postgres

    server = start_postgres({"work_mem": WORK_MEM, "shared_buffers": "512MB"})
    data_dir = tempfile.mkdtemp(prefix="tw-bench-")
    try:
        setup_django(server.url("postgres"), data_dir)
        from django.db import connection

        from analytics.platform.windows import Window
        from analytics.services import metrics_query as query
        from analytics.services.rollups import rollup_metrics

        with connection.cursor() as cursor:
            cursor.execute(f"SET work_mem = '{WORK_MEM}'")
        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
        loaded = load_events(total, end)
        org, hot_ids = loaded["org"], loaded["hot_series"]
        print(f"loaded {total:,} events in {loaded['load_seconds']:.0f}s", flush=True)

        started = time.perf_counter()
        rollup_metrics(now=end - timedelta(hours=1))
        initial_build = time.perf_counter() - started
        started = time.perf_counter()
        refreshed = rollup_metrics(now=end + timedelta(minutes=1, seconds=30))
        refresh = time.perf_counter() - started
        print(f"rollups built in {initial_build:.0f}s; last hour refreshed in {refresh * 1000:.0f} ms", flush=True)

        results = {"total": total, "initial_build_s": initial_build, "refresh_ms": refresh * 1000,
                   "refresh_rows": refreshed, "errors": []}
        for label, span in (("24h", timedelta(hours=24)), ("30d", timedelta(days=DAYS))):
            window = Window(end - span, end)
            fast_ms, stats = median_ms(lambda w=window: query.statistics(HOT, w, org=org))
            raw_ms, exact = median_ms(lambda w=window: raw_statistics(hot_ids, w.start, w.end), repeats=3)
            assert stats.count == exact[0] and stats.min == exact[2] and stats.max == exact[3], (stats, exact)
            assert abs(stats.sum - exact[1]) <= 1e-6 * abs(exact[1])
            worst = max(relative_error(getattr(stats, n), e) for n, e in zip(("p50", "p95", "p99"), exact[4],
                                                                               strict=True))
            results[f"stats_{label}"] = {"ms": fast_ms, "raw_ms": raw_ms, "source": stats.source,
                                         "count": stats.count, "worst_error": worst}
            results["errors"].append(worst)
            print(f"statistics {label}: {fast_ms:.1f} ms ({stats.source}) vs raw {raw_ms:.0f} ms", flush=True)

        window = Window(end - timedelta(days=DAYS), end)
        for aggregate in ("avg", "p95"):
            fast_ms, series = median_ms(
                lambda a=aggregate: query.time_series(HOT, window, interval="1h", aggregate=a, org=org))
            raw_ms, exact = median_ms(lambda a=aggregate: raw_hourly(hot_ids, window.start, window.end, a), repeats=3)
            worst = 0.0
            for moment, value in series.points:
                if moment in exact and moment >= window.start and moment + timedelta(hours=1) <= window.end:
                    worst = max(worst, relative_error(value, exact[moment]))
            results[f"series_{aggregate}"] = {"ms": fast_ms, "raw_ms": raw_ms, "source": series.source,
                                              "points": len(series.points), "worst_error": worst}
            if aggregate == "p95":
                results["errors"].append(worst)
            print(f"hourly series {aggregate}: {fast_ms:.1f} ms vs raw {raw_ms:.0f} ms", flush=True)

        results["ingest"] = bench_ingest(org)
        print(f"ingest: {results['ingest']['api_rows_per_s']:.0f} rows/s vs COPY "
              f"{results['ingest']['copy_rows_per_s']:.0f} rows/s", flush=True)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            results["postgres"] = cursor.fetchone()[0]
        return results
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()


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


def report(results: dict) -> str:
    import django
    import psycopg

    def row(what, fast, raw, target_ms, target_ratio):
        ratio = raw / fast if fast else float("inf")
        met = fast <= target_ms and ratio >= target_ratio
        return (f"| {what} | {fast:.1f} ms | {raw:.0f} ms | {ratio:,.0f}× | ≤ {target_ms} ms and ≥ {target_ratio}× | "
                f"{'met' if met else '**not met**'} |")

    ingest = results["ingest"]
    ingest_ratio = ingest["api_rows_per_s"] / ingest["copy_rows_per_s"]
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
        f"30 days. Each figure is the median of {REPEATS} warm runs (raw: 3), beside the raw SQL that answers "
        "the same question exactly, measured in the same run.",
        "",
        "| question | query layer | raw PostgreSQL | speed-up | target | |",
        "|---|---|---|---|---|---|",
        row("statistics, 24 h (count, sum, min, max, p50, p95, p99)", results["stats_24h"]["ms"],
            results["stats_24h"]["raw_ms"], 10, 30),
        row("statistics, 30 days", results["stats_30d"]["ms"], results["stats_30d"]["raw_ms"], 30, 100),
        row("hourly series over 30 days, avg", results["series_avg"]["ms"], results["series_avg"]["raw_ms"], 20, 100),
        row("hourly series over 30 days, p95", results["series_p95"]["ms"], results["series_p95"]["raw_ms"], 20, 100),
        "",
        f"- Batch ingest through `POST metrics/batch` (JSON, validation, event-id dedup, COPY): "
        f"{ingest['api_rows_per_s']:,.0f} rows/s against a bare psycopg COPY of the same rows "
        f"{ingest['copy_rows_per_s']:,.0f} rows/s = **{ingest_ratio:.2f}×** (target ≥ 0.25×: "
        f"{'met' if ingest_ratio >= 0.25 else '**not met**'}).",
        f"- Rollup refresh of the last hour (every metric): **{results['refresh_ms']:.0f} ms** "
        f"({results['refresh_rows']['minute_rows']:,} minute rows, {results['refresh_rows']['hour_rows']:,} "
        f"hour rows); the first build of all 30 days took {results['initial_build_s']:.0f} s.",
        f"- Worst relative quantile error (p50/p95/p99 of both windows, every hourly p95 point): "
        f"**{worst * 100:.3f}%** (target ≤ 1%: {'met' if worst <= 0.01 else '**not met**'}). Counts, sums, min "
        "and max were checked equal to the raw answers.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--no-write", action="store_true", help="Print the report, leave docs/ alone.")
    args = parser.parse_args(argv)
    results = run(args.events)
    section = report(results)
    print(section)
    if not args.no_write:
        print(f"written to {replace_section('## Metrics at scale', section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
