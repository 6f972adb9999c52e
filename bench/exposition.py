"""``/metrics`` with 10,000 skill series against a bare ``generate_latest`` of the same series.

    python -m bench.exposition [--postgres] [--skills 5000] [--orgs 2] [--no-write]

Stores two executions and one rating for each of ``skills`` × ``orgs`` (skill, org) pairs through the ingest
service (so the totals, the metric events and the ratings are what the API would have stored), rolls the
metrics up, then times the platform's ``exposition()`` (every store family read from the database, the
health scores read from the snapshot of the job that is timed too) against prometheus_client's
``generate_latest`` of a registry holding the same skill families and label sets in memory — the cost of
formatting alone. Medians of 5 runs. Target: ≤ 1.5× the bare formatting (issue 17). Writes the section
"## /metrics exposition" of docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.setup import bench_arguments, bench_database, database_section, publish  # noqa: E402

HEADING = "## /metrics exposition"
TARGET_RATIO = 1.5
RUNS = 5


def load(skills: int, orgs: int) -> int:
    from django.db import connection

    from analytics.models import Organization
    from analytics.services.rollups import rollup_metrics
    from analytics.services.skills import ExecutionItem, RatingItem, record_executions, record_ratings

    pairs = 0
    for number in range(orgs):
        org = Organization.get_or_create_by_slug(f"org-{number}")
        executions = [ExecutionItem(skill_id=f"skill_{index:05d}", success=attempt == 0,
                                    latency_ms=20.0 + attempt * 300)
                      for index in range(skills) for attempt in range(2)]
        for start in range(0, len(executions), 5000):
            record_executions(org, executions[start:start + 5000])
        record_ratings(org, [RatingItem(skill_id=f"skill_{index:05d}", rating=4) for index in range(skills)])
        pairs += skills
    rollup_metrics()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does soon after a bulk load (see bench.reads)
            cursor.execute("ANALYZE")
    return pairs


def bare_registry(pairs: list[tuple[str, str]]):
    """The skill families of the client backends, with the same label sets, held in memory."""
    from prometheus_client import CollectorRegistry

    from analytics.metric_families import SKILL_FAMILIES, prometheus_metric

    registry = CollectorRegistry()
    for family in SKILL_FAMILIES:
        metric = prometheus_metric(family, registry)
        for skill_id, org_id in pairs:
            child = metric.labels(skill_id=skill_id, org_id=org_id)
            if family.kind == "histogram":
                child.observe(20.0)
                child.observe(320.0)
            elif family.kind == "gauge":
                child.set(4)
            else:
                child.inc(2)
    return registry


def median_seconds(work) -> tuple[float, int]:
    timings, size = [], 0
    for _ in range(RUNS):
        started = time.perf_counter()
        size = len(work())
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), size


def run() -> dict:
    from prometheus_client import generate_latest

    from analytics.models import SkillExecutionTotals
    from analytics.services.health_snapshots import compute_health_snapshots
    from monitoring.prometheus import exposition

    pairs = [(str(skill), slug) for skill, slug in
             SkillExecutionTotals.objects.values_list("skill_id", "org__slug").order_by("pk")]
    registry = bare_registry(pairs)
    # Without a scheduler: the period's first scrape computes the health scores (PROMETHEUS_HEALTH_SCORE_SECONDS).
    started = time.perf_counter()
    exposition()
    unscheduled_first_s = time.perf_counter() - started
    started = time.perf_counter()
    compute_health_snapshots()  # as the scheduler does every minute
    job_s = time.perf_counter() - started
    started = time.perf_counter()
    exposition()  # the first scrape after the job reads its snapshot
    first_s = time.perf_counter() - started
    platform_s, platform_bytes = median_seconds(exposition)
    bare_s, bare_bytes = median_seconds(lambda: generate_latest(registry))
    return {"series": len(pairs), "first_s": first_s, "unscheduled_first_s": unscheduled_first_s, "job_s": job_s,
            "platform_s": platform_s, "platform_bytes": platform_bytes, "bare_s": bare_s, "bare_bytes": bare_bytes}


def report_row(database: str, result: dict) -> str:
    ratio = result["platform_s"] / result["bare_s"]
    met = "met" if ratio <= TARGET_RATIO else "**not met**"
    return (f"| {database} | {result['series']:,} | **{result['platform_s'] * 1000:.0f} ms** "
            f"({result['platform_bytes'] / 1e6:.1f} MB) | {result['first_s'] * 1000:.0f} ms | "
            f"{result['job_s'] * 1000:.0f} ms | {result['unscheduled_first_s'] * 1000:.0f} ms | "
            f"{result['bare_s'] * 1000:.0f} ms "
            f"({result['bare_bytes'] / 1e6:.1f} MB) | {ratio:.2f}× | {met} |")


def section(rows: dict[str, str]) -> str:
    return database_section(HEADING, [
        "`python -m bench.exposition` (SQLite) and `--postgres`: a scrape of `/metrics` (`exposition()`: every",
        "store family read from the database, the health scores as below) with 10,000 (skill, org) label",
        "sets, against prometheus_client's `generate_latest` of the same skill families held in memory (what a",
        "process-local exporter would pay). Medians of 5 runs. Target: ≤ 1.5× the bare formatting. The health",
        "scores are read from the snapshot of the job *compute health scores* (every minute): *first scrape*",
        "is the one after the job ran (it reads the snapshot; the others reuse it), *job* the job's run. Without a",
        "scheduler the first scrape of each `PROMETHEUS_HEALTH_SCORE_SECONDS` period computes them: *unscheduled*.",
        "On PostgreSQL the bench runs ANALYZE after its bulk load, as autovacuum soon would: before it, the series",
        "lookups by tag took 14 s each on the fresh tables (the unscheduled first scrape took 31 s).",
    ], ["database", "label sets", "/metrics (size)", "first scrape", "job", "unscheduled first scrape",
        "bare generate_latest (size)", "ratio", "target"], rows)


def main() -> int:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--skills", type=int, default=5000)
    parser.add_argument("--orgs", type=int, default=2)
    options = parser.parse_args()
    with bench_database(options.postgres, "tw-bench-exposition-") as database:
        started = time.perf_counter()
        load(options.skills, options.orgs)
        print(f"loaded in {time.perf_counter() - started:.1f} s", flush=True)
        result = run()
    publish(HEADING, section, database, report_row(database, result), write=not options.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
