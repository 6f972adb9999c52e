"""Retention on PostgreSQL: one day of raw events removed by DELETE (before issue 17) or by dropping its partition.

    python -m bench.partitions [--per-day 1000000] [--days 4] [--no-write]

Starts its own PostgreSQL (like bench.metrics), migrates (``analytics_metricevent`` partitioned by day) and
builds an unpartitioned twin, ``bench_plain``, with the same columns and indexes. Both get the same rows:
``--per-day`` events a day over ``--days`` days, 50 series. Then, for each of the oldest ``--days - 1``
days in turn (a median of those runs):

- DELETE: the day's rows removed from the twin as retention removed them before the partitions,
  ``delete_in_batches`` (10,000 primary keys per statement) — here as its two statements per batch in SQL;
- DROP: ``partitions.remove_events_before(cutoff)`` on the partitioned table (the day's count and its
  ``DROP TABLE``, under the table lock) — what ``analytics.retention.cleanup`` runs now.

And the reads over the remaining rows, on both tables: the newest day's statistics of one series and of all,
and an hour of one series (median of REPEATS). Writes the section "## Retention: DELETE vs DROP PARTITION" of
docs/benchmarks.md (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from bench.metrics import machine, setup_django
from bench.report import replace_section

HEADING = "## Retention: DELETE vs DROP PARTITION"
PLAIN = "bench_plain"
DELETE_BATCH = 10_000  # analytics.retention.DELETE_BATCH
SERIES = 50
REPEATS = 5


def build(per_day: int, days: int, first_day: datetime) -> dict:
    """The same rows in the partitioned events table and in its unpartitioned twin."""
    from django.db import connection

    from analytics.models import MetricSeries, Organization
    from analytics.services.partitions import ensure_partitions

    org = Organization.objects.create(slug="bench", name="Bench")
    series = [MetricSeries.objects.create(org=org, name="retention.latency", metric_type="timer", unit="ms",
                                          tags={"host": f"h{index}"}).id for index in range(SERIES)]
    last_day = first_day + timedelta(days=days - 1)
    ensure_partitions(last_day, days_back=days)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {PLAIN} (LIKE analytics_metricevent INCLUDING DEFAULTS)")
        for day in range(days):
            start = first_day + timedelta(days=day)
            # Times spread evenly over the day, series in turn, lognormal-ish values.
            cursor.execute(
                "INSERT INTO analytics_metricevent (series_id, org_id, timestamp, value) "
                "SELECT (%s::bigint[])[1 + n %% %s], %s, %s + (n * 86400.0 / %s) * interval '1 second', "
                "round(exp(4.6 + 0.7 * sqrt(-2 * ln(random())) * cos(2 * pi() * random()))::numeric, 3) "
                "FROM generate_series(0, %s - 1) AS n",
                [series, SERIES, org.id, start, per_day, per_day])
        cursor.execute(f"INSERT INTO {PLAIN} SELECT * FROM analytics_metricevent ORDER BY timestamp")
        # The indexes the table had before it was partitioned (migration 0008).
        cursor.execute(f"ALTER TABLE {PLAIN} ADD PRIMARY KEY (id)")
        cursor.execute(f"CREATE INDEX {PLAIN}_series_time ON {PLAIN} (series_id, timestamp)")
        cursor.execute(f"CREATE INDEX {PLAIN}_time ON {PLAIN} (timestamp)")
        cursor.execute(f"VACUUM ANALYZE {PLAIN}")
        cursor.execute("VACUUM ANALYZE analytics_metricevent")
    return {"series": series, "load_s": time.perf_counter() - started}


def delete_day(cutoff: datetime) -> int:
    """The twin's rows older than ``cutoff``, removed the way ``delete_in_batches`` removes them."""
    from django.db import connection, transaction

    removed = 0
    with connection.cursor() as cursor:
        while True:
            with transaction.atomic():
                cursor.execute(f"SELECT id FROM {PLAIN} WHERE timestamp < %s LIMIT %s", [cutoff, DELETE_BATCH])
                ids = [row[0] for row in cursor.fetchall()]
                if not ids:
                    return removed
                cursor.execute(f"DELETE FROM {PLAIN} WHERE id = ANY(%s)", [ids])
                removed += cursor.rowcount


def drop_day(cutoff: datetime) -> int:
    from analytics.services.partitions import remove_events_before

    return remove_events_before(cutoff, DELETE_BATCH)


def timed(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


READS = [
    ("one series, newest day: count, avg, p95", "SELECT count(*), avg(value), percentile_cont(0.95) WITHIN GROUP "
     "(ORDER BY value) FROM {table} WHERE series_id = %(one)s AND timestamp >= %(day)s AND timestamp < %(end)s"),
    ("all 50 series, newest day: count, avg, p95", "SELECT count(*), avg(value), percentile_cont(0.95) WITHIN "
     "GROUP (ORDER BY value) FROM {table} WHERE series_id = ANY(%(all)s) AND timestamp >= %(day)s "
     "AND timestamp < %(end)s"),
    ("one series, one hour: the rows", "SELECT timestamp, value FROM {table} WHERE series_id = %(one)s "
     "AND timestamp >= %(hour)s AND timestamp < %(hour_end)s ORDER BY timestamp"),
]


def _rounded(rows: list[tuple]) -> list[tuple]:
    return [tuple(round(value, 6) if isinstance(value, float) else value for value in row) for row in rows]


def reads(series: list[int], newest_day: datetime) -> list[dict]:
    from django.db import connection

    params = {"one": series[0], "all": series, "day": newest_day, "end": newest_day + timedelta(days=1),
              "hour": newest_day + timedelta(hours=14), "hour_end": newest_day + timedelta(hours=15)}
    rows = []
    with connection.cursor() as cursor:
        for what, sql in READS:
            answers, figures = {}, {}
            for table in ("analytics_metricevent", PLAIN):
                cursor.execute(sql.format(table=table), params)  # warm-up
                timings = []
                for _ in range(REPEATS):
                    started = time.perf_counter()
                    cursor.execute(sql.format(table=table), params)
                    answers[table] = cursor.fetchall()
                    timings.append((time.perf_counter() - started) * 1000)
                figures[table] = statistics.median(timings)
            # The same rows, the same answer (sums in another order: equal to the last few bits).
            assert _rounded(answers["analytics_metricevent"]) == _rounded(answers[PLAIN]), what
            rows.append({"what": what, "partitioned_ms": figures["analytics_metricevent"],
                         "plain_ms": figures[PLAIN]})
    return rows


def run(per_day: int, days: int) -> dict:
    from tests.servers import start_postgres

    server = start_postgres({"shared_buffers": "512MB"})
    data_dir = tempfile.mkdtemp(prefix="tw-bench-partitions-")
    try:
        setup_django(server.url("postgres"), data_dir)
        from django.db import connection

        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        first_day = today - timedelta(days=days - 1)
        built = build(per_day, days, first_day)
        print(f"loaded {per_day * days:,} events into each table in {built['load_s']:.0f} s", flush=True)
        newest = first_day + timedelta(days=days - 1)
        results = {"per_day": per_day, "days": days, "load_s": built["load_s"], "deletes": [], "drops": []}
        for day in range(days - 1):
            cutoff = first_day + timedelta(days=day + 1)
            seconds, removed = timed(delete_day, cutoff)
            assert removed == per_day, (removed, per_day)
            results["deletes"].append(seconds)
            seconds, removed = timed(drop_day, cutoff)
            assert removed == per_day, (removed, per_day)
            results["drops"].append(seconds)
            print(f"day {day + 1}: DELETE {results['deletes'][-1]:.2f} s, DROP {results['drops'][-1] * 1000:.1f} ms",
                  flush=True)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_total_relation_size('{PLAIN}'), "
                           "(SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits "
                           "WHERE inhparent = 'analytics_metricevent'::regclass)")
            results["plain_bytes"], results["partitioned_bytes"] = cursor.fetchone()
            cursor.execute(f"ANALYZE {PLAIN}")
            cursor.execute("SHOW server_version")
            results["postgres"] = cursor.fetchone()[0]
        results["reads"] = reads(built["series"], newest)
        return results
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()


def report(results: dict) -> str:
    import django
    import psycopg

    delete_s = statistics.median(results["deletes"])
    drop_s = statistics.median(results["drops"])
    runs = len(results["deletes"])
    lines = [
        HEADING,
        "",
        f"`python -m bench.partitions` on {datetime.now(UTC):%Y-%m-%d}: {machine()}; PostgreSQL "
        f"{results['postgres']} (shared_buffers 512MB, started by the bench); Python {platform.python_version()}, "
        f"Django {django.get_version()}, psycopg {psycopg.__version__}.",
        "",
        f"{results['per_day']:,} events a day over {results['days']} days, 50 series, in the day-partitioned "
        "`analytics_metricevent` and in an unpartitioned twin with the indexes the table had before (primary "
        "key, (series, time), time). Removing the oldest day, "
        f"median of {runs} days (each {results['per_day']:,} rows):",
        "",
        "| removing one day | time | |",
        "|---|---|---|",
        f"| DELETE in batches of {DELETE_BATCH:,} primary keys (retention before) | {delete_s:.2f} s | "
        "the rows stay on disk, dead, until VACUUM |",
        f"| DROP of the day's partition (`partitions.remove_events_before`, retention now) | "
        f"{drop_s * 1000:.1f} ms | {delete_s / drop_s:,.0f}× faster; the space is returned at once |",
        "",
        f"After the removals, the same rows take {results['plain_bytes'] / 1e6:,.0f} MB on disk in the twin (until "
        f"VACUUM lets new rows reuse the space; the file does not shrink) and "
        f"{results['partitioned_bytes'] / 1e6:,.0f} MB in the partitions.",
        "",
        f"Reads over the remaining rows, the same SQL on both tables, median of {REPEATS}:",
        "",
        "| query | partitioned | unpartitioned | |",
        "|---|---|---|---|",
    ]
    for row in results["reads"]:
        verdict = "unchanged or better" if row["partitioned_ms"] <= row["plain_ms"] * 1.1 else "**slower**"
        lines.append(f"| {row['what']} | {row['partitioned_ms']:.1f} ms | {row['plain_ms']:.1f} ms | {verdict} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=4, help="Days loaded; the oldest days - 1 are removed.")
    parser.add_argument("--no-write", action="store_true", help="Print the report, leave docs/ alone.")
    args = parser.parse_args(argv)
    if args.days < 2:
        parser.error("--days must be at least 2")
    section = report(run(args.per_day, args.days))
    print(section)
    if not args.no_write:
        print(f"written to {replace_section(HEADING, section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
