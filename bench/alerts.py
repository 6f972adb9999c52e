"""Alert evaluation: one pass over 1,000 enabled rules on 5-minute windows.

    python -m bench.alerts [--postgres] [--rules 1000] [--metrics 50] [--passes 5] [--no-write]

Sets Django up on a throw-away data directory (SQLite, or with ``--postgres`` a PostgreSQL
started like the tests' and stopped by its pid), migrates, records events over the last minutes
for ``--metrics`` metric names (5 hosts each, one event per host every 10 s), and creates the rules:
every aggregation, thresholds spread so that about one rule in ten breaches, a quarter grouped by
host, some with a duration. It then times evaluation passes one minute apart (``now=``): the first
pass (which opens the incidents) and the median of the following ones. Writes the section
"## Alert evaluation" of docs/benchmarks.md (one row per database).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.setup import bench_arguments, bench_database, database_section, publish  # noqa: E402

HEADING = "## Alert evaluation"
TARGET_SECONDS = 2.0
HOSTS = 5
EVENT_EVERY_SECONDS = 10
HISTORY_MINUTES = 10
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def load(rule_count: int, metric_count: int, passes: int, seed: int = 20261123) -> dict:
    from alerts.models import AGGREGATIONS, AlertRule
    from analytics.models import Organization
    from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

    rng = random.Random(seed)
    org = Organization.objects.create(slug="bench", name="Bench")
    start = NOW - timedelta(minutes=HISTORY_MINUTES)
    end = NOW + timedelta(minutes=passes)
    items = []
    for metric in range(metric_count):
        level = rng.uniform(10, 100)
        moment = start
        while moment <= end:
            for host in range(HOSTS):
                items.append(MetricItem(f"bench.metric_{metric:02d}", round(rng.gauss(level, level / 10), 3),
                                        "gauge", "", "", {"host": f"h{host}"}, moment))
            moment += timedelta(seconds=EVENT_EVERY_SECONDS)
    for first in range(0, len(items), 10_000):
        ingest_metric_items(org, items[first:first + 10_000])
    rules = []
    for index in range(rule_count):
        metric = index % metric_count
        breaching = rng.random() < 0.1
        rules.append(AlertRule(
            org=org, name=f"bench rule {index:04d}", metric_name=f"bench.metric_{metric:02d}",
            aggregation=AGGREGATIONS[index % len(AGGREGATIONS)], window_seconds=300,
            group_by=["host"] if index % 4 == 0 else [], condition_operator="gt" if breaching else "lt",
            threshold=-1.0 if breaching else -1e9, duration_seconds=rng.choice([0, 0, 60, 120]),
        ))
    AlertRule.objects.bulk_create(rules)
    return {"events": len(items), "rules": rule_count, "metrics": metric_count}


def run(passes: int) -> dict:
    from alerts.models import AlertIncident
    from alerts.services.evaluation import evaluate_rules

    timings, summaries = [], []
    for index in range(passes):
        started = time.perf_counter()
        summaries.append(evaluate_rules(NOW + timedelta(minutes=index)))
        timings.append(time.perf_counter() - started)
    return {
        "first_s": timings[0], "median_s": statistics.median(timings[1:]) if passes > 1 else timings[0],
        "queries": summaries[-1].queries, "opened_first": summaries[0].opened,
        "opened_total": AlertIncident.objects.count(),
        "rules_evaluated": summaries[-1].rules,
    }


def report_row(database: str, setup: dict, result: dict) -> str:
    met = "met" if result["median_s"] <= TARGET_SECONDS else "**not met**"
    return (f"| {database} | {result['rules_evaluated']:,} | {setup['metrics']} | {result['queries']} | "
            f"{setup['events']:,} | **{result['median_s']:.2f} s** | {result['first_s']:.2f} s "
            f"(opened {result['opened_first']} incidents; {result['opened_total']} after all passes) | {met} |")


def section(rows: dict[str, str]) -> str:
    return database_section(HEADING, [
        "`python -m bench.alerts` (SQLite) and `python -m bench.alerts --postgres`: one evaluation pass of every",
        "enabled rule (the default \"service unhealthy\" rule included) over 5-minute windows: rules of every",
        "aggregation on 50 metrics, a quarter grouped by host, about one in ten breaching. Rules sharing",
        "metric, window, tag filters and group_by share one query. *Steady pass* is the median of the passes",
        "after the first, one minute apart; the first pass also opens the incidents. Target: ≤ 2 s per pass.",
    ], ["database", "rules", "metrics", "queries", "events", "steady pass", "first pass", "target ≤ 2 s"], rows)


def main(argv=None) -> int:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--metrics", type=int, default=50)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args(argv)
    with bench_database(args.postgres, "tw-bench-alerts-") as database:
        setup = load(args.rules, args.metrics, args.passes)
        result = run(args.passes)
    row = report_row(database, setup, result)
    publish(HEADING, section, database, row, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
