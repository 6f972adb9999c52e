"""Reads and export over 10M events: server time of the dashboards and API reads, peak memory of an export.

    python -m bench.reads [--events 10000000] [--executions 2000000] [--no-write]

Starts its own PostgreSQL (like bench.metrics), loads the metric events of bench.metrics (``load_events``:
the hot metric ``api.response_time`` and 199 others over 30 days) and skill executions over the same 30
days (``skill_usage`` rows and their ``skill.latency_ms`` / ``skill.executions`` events, as
``record_executions`` stores them, but by COPY and INSERT ... SELECT), ratings and installs, the monitoring
demo's services; then runs the jobs a deployment runs (rollups, leaderboards, the daily SLA) and asks:

- (a) each admin page (ops home, the five dashboards at 24h, 7d and 30d, as a staff superuser) and the main
  API reads (an org's Bearer token) through Django's test client, in process: the server's time without the
  network. One warm-up, then ``--runs`` runs; p50 and p95. Target: p95 ≤ 200 ms.
- (b) ``manage.py export --what events --days 31`` as CSV and as JSON lines in a child process: its peak RSS
  (GNU time's maximum resident set size), rows, seconds, rows/s. Target: peak ≤ 200 MB.

Writes the section "## Reads and export over 10M events" of docs/benchmarks.md (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.metrics import DAYS, HOT, WORK_MEM, load_events, machine, setup_django
from bench.report import replace_section

ROOT = Path(__file__).resolve().parent.parent  # (bench.metrics puts it on sys.path, for tests.servers)

HEADING = "## Reads and export over 10M events"
TARGET_MS = 200
TARGET_MB = 200
RUNS = 20
SKILLS = 50
# (slug, share of the executions, users); the first is bench.metrics' org, which also holds the hot metric,
# so that one token reads both.
ORGS = (("bench", 0.5, 400), ("acme", 0.35, 250), ("globex", 0.15, 100))
ERROR_TYPES = ("TimeoutError", "ValidationError", "UpstreamError", "RateLimited")
SKILL_NAMES = [
    "parse_json", "render_report", "legacy_scraper", "agent_planner", "xml_to_yaml",  # the special ones
    "summarize_text", "translate_text", "extract_entities", "classify_intent", "sql_query", "web_search",
    "fetch_url", "csv_to_json", "send_email", "create_ticket", "resize_image", "ocr_document", "sentiment",
    "code_review", "unit_test_gen", "regex_builder", "calendar_lookup", "weather_lookup", "currency_convert",
    "geocode_address", "pdf_to_text", "markdown_render", "vector_search", "dedupe_records", "schema_infer",
]
API = "/api/v1/analytics/"


# --- Data ----------------------------------------------------------------------------------------


def _skills(rng: np.random.Generator) -> list[dict]:
    """50 skills: Zipf-like popularity, their own latency and failure rate; one getting slower (render_report),
    one failing (legacy_scraper), one new and growing (agent_planner, 6 days old), one deprecated and fading."""
    names = SKILL_NAMES + [f"tool_{index:02d}" for index in range(SKILLS - len(SKILL_NAMES))]
    skills = []
    for rank, name in enumerate(rng.permutation(names[:SKILLS]).tolist(), start=1):
        skills.append({"skill_id": name, "weight": 1 / rank ** 0.9, "latency": float(rng.lognormal(5, 0.8)),
                       "failure": float(rng.choice([0.005, 0.01, 0.02, 0.05, 0.1])), "slowdown": 0.0,
                       "new_days": None, "fade": False, "deprecated": False})
    special = {skill["skill_id"]: skill for skill in skills}
    special["parse_json"].update(latency=45.0, failure=0.003)
    special["render_report"].update(latency=900.0, slowdown=0.05)
    special["legacy_scraper"].update(latency=600.0, failure=0.35)
    special["agent_planner"].update(latency=250.0, failure=0.03, new_days=6.0)
    special["xml_to_yaml"].update(latency=120.0, failure=0.05, fade=True, deprecated=True)
    return skills


def _daily_times(rng, size: int, start: float, end: float) -> np.ndarray:
    """Uniform times with a daily pattern (busiest at 14:00 UTC, a third of that at night)."""
    out = np.empty(0)
    while out.size < size:
        moments = rng.uniform(start, end, 2 * size)
        hours = (moments % 86400) / 3600
        busy = 0.35 + 0.65 * np.maximum(0.0, 1 - np.abs(hours - 14) / 9)
        out = np.concatenate([out, moments[rng.random(moments.size) < busy]])
    return out[:size]


def load_executions(total: int, end: datetime, seed: int = 20261207) -> dict:
    """``total`` skill executions over 30 days in the orgs of ORGS, stored as ``record_executions`` stores them:
    skill_usage rows, two metric events each (latency, and a count of 1, tagged skill_id and success), the
    catalogue, the per-skill totals, the per-user days; plus ratings and installs through their services."""
    from django.db import connection

    from analytics.metric_families import LATENCY_BUCKETS_MS
    from analytics.models import MetricType, Organization, Skill, SkillExecutionTotals
    from analytics.models.skills import EXECUTIONS_METRIC, LATENCY_METRIC
    from analytics.services.metrics_ingest import MetricItem, _series_for
    from analytics.services.skills import InstallItem, RatingItem, record_installs, record_ratings

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=DAYS)
    t0, t1 = start.timestamp(), end.timestamp()
    skills = _skills(rng)
    weights = np.array([skill["weight"] for skill in skills])
    weights /= weights.sum()
    Skill.objects.bulk_create([Skill(skill_id=skill["skill_id"], name=skill["skill_id"].replace("_", " "),
                                     deprecated=skill["deprecated"], created_at=start) for skill in skills],
                              ignore_conflicts=True)
    orgs = [Organization.get_or_create_by_slug(slug) for slug, _, _ in ORGS]
    staging = "bench_executions"
    totals = []
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE UNLOGGED TABLE {staging} (org_id bigint, skill_id text, user_id text, "
                       "success boolean, latency double precision, error_type text, version text, "
                       "epoch double precision)")
        for org, (_slug, share, users) in zip(orgs, ORGS, strict=True):
            count = round(total * share)
            skill_index = rng.choice(len(skills), count, p=weights)
            epochs = np.empty(count)
            for index, skill in enumerate(skills):
                mask = skill_index == index
                size = int(mask.sum())
                if skill["new_days"] is not None:  # growing since its first day: most of it recent
                    epochs[mask] = t1 - skill["new_days"] * 86400 * rng.random(size) ** 2
                elif skill["fade"]:  # fading out: most of it old
                    epochs[mask] = t0 + (t1 - t0) * (1 - np.sqrt(rng.random(size)))
                else:
                    epochs[mask] = _daily_times(rng, size, t0, t1)
            latency_base = np.array([skill["latency"] for skill in skills])[skill_index]
            slowdown = np.array([skill["slowdown"] for skill in skills])[skill_index]
            days_in = (epochs - t0) / 86400
            latency = np.round(latency_base * (1 + slowdown * days_in) * rng.lognormal(0, 0.35, count), 1)
            success = rng.random(count) >= np.array([skill["failure"] for skill in skills])[skill_index]
            user_rank = np.minimum(rng.zipf(1.3, count), users)  # a few heavy users, a long tail
            has_user = rng.random(count) >= 0.05
            errors = rng.choice(ERROR_TYPES, count)
            version = np.where(t1 - epochs > 10 * 86400, "1.0", "1.1")
            skill_ids = np.array([skill["skill_id"] for skill in skills])[skill_index]
            with cursor.cursor.copy(f"COPY {staging} FROM STDIN") as copy:
                for row in zip(skill_ids.tolist(), user_rank.tolist(), has_user.tolist(), success.tolist(),
                               latency.tolist(), errors.tolist(), version.tolist(), epochs.tolist(), strict=True):
                    skill_id, user, with_user, ok, ms, error, ver, epoch = row
                    copy.write_row((org.id, skill_id, f"user_{user:04d}" if with_user else None, ok, ms,
                                    "" if ok else error, ver, epoch))
            buckets = np.searchsorted(np.array(LATENCY_BUCKETS_MS), latency, side="left")  # bisect_left
            for index, skill in enumerate(skills):
                mask = skill_index == index
                if mask.any():
                    totals.append(SkillExecutionTotals(
                        skill_id=skill["skill_id"], org=org, executions=int(mask.sum()),
                        successes=int(success[mask].sum()), latency_sum_ms=float(latency[mask].sum()),
                        latency_buckets=np.bincount(buckets[mask], minlength=len(LATENCY_BUCKETS_MS) + 1).tolist()))

        # The series of the executions' metric events, with their tag rows (as ingest creates them).
        cursor.execute(f"SELECT org_id, skill_id, success, min(epoch) FROM {staging} GROUP BY 1, 2, 3")
        keys = cursor.fetchall()
        by_org = {org.id: org for org in orgs}
        mapping = []
        for org in orgs:
            items = []
            for org_id, skill_id, success, first in keys:
                if org_id != org.id:
                    continue
                tags = {"skill_id": skill_id, "success": "true" if success else "false"}
                moment = datetime.fromtimestamp(first, UTC)
                items += [MetricItem(metric_name=LATENCY_METRIC, value=0.0, metric_type=MetricType.TIMER, unit="ms",
                                     tags=tags, timestamp=moment),
                          MetricItem(metric_name=EXECUTIONS_METRIC, value=1.0, metric_type=MetricType.COUNTER,
                                     tags=tags, timestamp=moment)]
            series = _series_for(by_org[org.id], items)
            for item in items:
                mapping.append((org.id, item.tags["skill_id"], item.tags["success"] == "true",
                                item.metric_name == LATENCY_METRIC, series[item.series_key].id))
        cursor.execute("CREATE TEMP TABLE bench_series_map (org_id bigint, skill_id text, success boolean, "
                       "latency boolean, series_id bigint)")
        with cursor.cursor.copy("COPY bench_series_map FROM STDIN") as copy:
            for row in mapping:
                copy.write_row(row)

        cursor.execute(
            "INSERT INTO skill_usage (skill_id, org_id, user_id, success, latency_ms, error_type, skill_version, "
            f"timestamp) SELECT skill_id, org_id, user_id, success, latency, error_type, version, to_timestamp(epoch) "
            f"FROM {staging} ORDER BY epoch")
        cursor.execute(
            "INSERT INTO skill_usage_day (day, org_id, user_id, skill_id, executions) "
            "SELECT (to_timestamp(epoch) AT TIME ZONE 'UTC')::date, org_id, user_id, skill_id, count(*) "
            f"FROM {staging} WHERE user_id IS NOT NULL GROUP BY 1, 2, 3, 4")
        cursor.execute(
            "INSERT INTO skill_user_day (day, org_id, user_id, executions) "
            "SELECT day, org_id, user_id, sum(executions) FROM skill_usage_day GROUP BY 1, 2, 3")
        cursor.execute(
            "INSERT INTO skill_user_last_use (org_id, user_id, skill_id, last_day) "
            "SELECT org_id, user_id, skill_id, max(day) FROM skill_usage_day GROUP BY 1, 2, 3")
        cursor.execute(
            "INSERT INTO analytics_metricevent (series_id, org_id, timestamp, value) "
            "SELECT m.series_id, s.org_id, to_timestamp(s.epoch), CASE WHEN m.latency THEN s.latency ELSE 1.0 END "
            f"FROM {staging} s JOIN bench_series_map m USING (org_id, skill_id, success) ORDER BY s.epoch")
        events = cursor.rowcount
        cursor.execute(
            "UPDATE analytics_skill k SET last_recorded_at = x.last, version = x.version FROM ("
            f"SELECT DISTINCT ON (skill_id) skill_id, to_timestamp(epoch) AS last, version FROM {staging} "
            "ORDER BY skill_id, epoch DESC) x WHERE k.skill_id = x.skill_id")
        cursor.execute(f"DROP TABLE {staging}")
        cursor.execute("DROP TABLE bench_series_map")
    SkillExecutionTotals.objects.bulk_create(totals)

    # Ratings and installs (small), through their services.
    chooser = random.Random(seed)
    ratings = installs = 0
    for org, (_slug, _, users) in zip(orgs, ORGS, strict=True):
        rating_items, install_items = [], []
        for skill in skills:
            quality = 2.0 if skill["failure"] > 0.2 else chooser.uniform(2.8, 4.8)
            for user in chooser.sample(range(1, users + 1), chooser.randint(3, 40)):
                rating_items.append(RatingItem(
                    skill_id=skill["skill_id"], user_id=f"user_{user:04d}",
                    rating=max(1, min(5, round(chooser.gauss(quality, 0.8)))),
                    timestamp=end - timedelta(days=chooser.uniform(0, skill["new_days"] or DAYS))))
            for user in chooser.sample(range(1, users + 1), chooser.randint(2, 60)):
                install_items.append(InstallItem(
                    skill_id=skill["skill_id"], user_id=f"user_{user:04d}",
                    timestamp=end - timedelta(days=chooser.uniform(0, skill["new_days"] or DAYS))))
        ratings += record_ratings(org, rating_items).accepted
        installs += record_installs(org, install_items).accepted
    return {"executions": total, "execution_events": events, "skills": len(skills), "orgs": len(orgs),
            "users": sum(users for _, _, users in ORGS), "ratings": ratings, "installs": installs,
            "load_seconds": time.perf_counter() - started, "top_skill": skills[0]["skill_id"]}


def complete_series() -> None:
    """What ingest keeps on each series and bench.metrics' fast loader leaves out: the tag rows of its series,
    and every series' first_seen / last_seen from its events."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO analytics_metricseriestag (series_id, key, value) "
                       "SELECT s.id, t.key, t.value FROM analytics_metricseries s, jsonb_each_text(s.tags) t "
                       "ON CONFLICT DO NOTHING")
        cursor.execute("UPDATE analytics_metricseries s SET first_seen = x.first, last_seen = x.last FROM ("
                       "SELECT series_id, min(timestamp) AS first, max(timestamp) AS last FROM analytics_metricevent "
                       "GROUP BY 1) x WHERE s.id = x.series_id")
        cursor.execute("ANALYZE")


# --- The scheduler's jobs, as a running deployment has them -------------------------------------------


class Jobs:
    """Runs the scheduled analytics jobs when a deployment would have: rollups every minute, leaderboards every
    JOB_INTERVAL, health snapshots every SNAPSHOT_INTERVAL (analytics/schedule.py). Called before each measured
    row, untimed; ``seconds`` keeps how long each job took the last time it ran."""

    def __init__(self):
        self.boards_at = None
        self.health_at = None
        self.seconds: dict[str, float] = {}

    def _timed(self, name: str, job, *args) -> None:
        started = time.perf_counter()
        job(*args)
        self.seconds[name] = time.perf_counter() - started

    def keep_current(self) -> None:
        from django.utils import timezone

        from analytics.services.health_snapshots import SNAPSHOT_INTERVAL, compute_health_snapshots
        from analytics.services.leaderboards import JOB_INTERVAL, compute_leaderboards
        from analytics.services.rollups import rollup_metrics

        rollup_metrics()
        now = timezone.now()
        if self.boards_at is None or now - self.boards_at >= JOB_INTERVAL:
            self._timed("leaderboards", compute_leaderboards, now)
            self.boards_at = now
        if self.health_at is None or now - self.health_at >= SNAPSHOT_INTERVAL:
            self._timed("health", compute_health_snapshots, now)
            self.health_at = now


def run_jobs(end: datetime) -> dict:
    from django.utils import timezone

    from alerts import demo as alerts_demo
    from analytics.platform.collectors import DemoContext
    from analytics.services.rollups import rollup_metrics
    from monitoring import demo as monitoring_demo

    started = time.perf_counter()
    rollup_metrics(now=end - timedelta(hours=1))  # the first build of the history (the worker does it once)
    rollup_metrics()
    rollups_s = time.perf_counter() - started
    # Services with 30 days of checks and their daily SLA; the alert demo's rules, evaluated now.
    context = DemoContext(days=DAYS, now=timezone.now(), rng=random.Random(20261123), log=lambda line: None)
    monitoring_demo.seed(context)
    alerts_demo.seed(context)
    jobs = Jobs()
    jobs.keep_current()
    return {"jobs": jobs, "rollups_s": rollups_s, "boards_s": jobs.seconds["leaderboards"],
            "health_s": jobs.seconds["health"]}


# --- (a) Server time --------------------------------------------------------------------------------


def measure(client, path: str, runs: int, headers: dict | None = None) -> dict:
    response = client.get(path, **(headers or {}))  # warm-up
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path, **(headers or {}))
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return {"p50": statistics.median(timings), "p95": float(np.percentile(timings, 95)), "max": max(timings),
            "bytes": len(response.content)}


def read_rows(org, top_skill: str) -> list[tuple[str, str, str, str]]:
    """(group, what, range, path) of every measured read."""
    from toolweaver_site.dashboards import DASHBOARDS

    rows = [("admin", "ops home `/admin/`", "fixed (1 h, 24 h, 7 d)", "/admin/")]
    for slug in DASHBOARDS:
        for label in ("24h", "7d", "30d"):
            rows.append(("admin", f"dashboard `{slug}`", label, f"/admin/dashboards/{slug}/?range={label}"))
    hot = f"{API}metrics/{HOT}"
    for label, window in (("24h", "hours=24"), ("30d", "days=30")):
        rows.append(("api", f"`metrics/{HOT}/statistics`", label, f"{hot}/statistics?{window}"))
        rows.append(("api", f"`metrics/{HOT}/time-series` (1h, p95)", label,
                     f"{hot}/time-series?{window}&interval=1h&aggregate=p95"))
    rows += [
        ("api", "`skills/leaderboard` (usage, cached)", "30d", f"{API}skills/leaderboard?type=usage"),
        ("api", "`skills/leaderboard` (usage over a window)", "7d", f"{API}skills/leaderboard?type=usage&days=7"),
        ("api", f"`skills/{top_skill}`", "24h", f"{API}skills/{top_skill}?hours=24"),
        ("api", f"`skills/{top_skill}`", "30d", f"{API}skills/{top_skill}?days=30"),
        ("api", f"`skills/{top_skill}/trend` (hour)", "24h", f"{API}skills/{top_skill}/trend?interval=hour"),
        ("api", f"`skills/{top_skill}/trend` (day)", "30d", f"{API}skills/{top_skill}/trend?interval=day"),
        ("api", "`skills/adoption`", "30d", f"{API}skills/adoption"),
        ("api", "`skills/adoption`", "7d", f"{API}skills/adoption?days=7"),
        ("api", "`performance`", "24h", f"{API}performance?hours=24"),
        ("api", "`performance`", "30d", f"{API}performance?days=30"),
    ]
    return rows


def profile_request(client, path: str, headers: dict, out) -> None:
    """One request under cProfile with each SQL query timed; the slowest queries with EXPLAIN ANALYZE."""
    import cProfile
    import io
    import pstats

    from django.db import connection

    queries = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append(((time.perf_counter() - started) * 1000, sql, params))

    profiler = cProfile.Profile()
    with connection.execute_wrapper(timed):
        started = time.perf_counter()
        profiler.enable()
        client.get(path, **headers)
        profiler.disable()
        total = (time.perf_counter() - started) * 1000
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
    in_sql = sum(ms for ms, _, _ in queries)
    out.write(f"\n\n===== {path}: {total:.0f} ms under the profiler; {len(queries)} queries, {in_sql:.0f} ms "
              "in SQL (client side)\n")
    for ms, sql, _ in sorted(queries, key=lambda query: -query[0])[:8]:
        out.write(f"  {ms:8.1f} ms  {sql[:400]}\n")
    for ms, sql, params in sorted(queries, key=lambda query: -query[0])[:2]:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")) and ms > 5:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            out.write(f"\n  EXPLAIN ANALYZE of the {ms:.0f} ms query:\n  {sql}\n  params {params!r}\n{plan}\n")
    out.write(text.getvalue())


def bench_reads(org, top_skill: str, jobs: Jobs, runs: int, only: str | None = None,
                profile: str | None = None) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from analytics.models import ApiToken

    admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "bench-password")
    staff = Client(HTTP_HOST="localhost")
    staff.force_login(admin)
    _, raw = ApiToken.issue(org, name="bench reads", read_only=True)
    api = Client(HTTP_HOST="localhost")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    results = []
    for group, what, label, path in read_rows(org, top_skill):
        if only and only not in path:
            continue
        jobs.keep_current()
        figures = measure(staff, path, runs) if group == "admin" else measure(api, path, runs, bearer)
        results.append({"group": group, "what": what, "range": label, "path": path, **figures})
        print(f"{path}: p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms "
              f"({figures['bytes']:,} bytes)", flush=True)
    if profile:  # development: what the rows that miss the target spend their time on
        with open(profile, "w") as out:
            for row in results:
                if row["p95"] > TARGET_MS:
                    jobs.keep_current()
                    client, headers = (staff, {}) if row["group"] == "admin" else (api, bearer)
                    profile_request(client, row["path"], headers, out)
        print(f"profiles of the rows over {TARGET_MS} ms in {profile}", flush=True)
    return results


# --- (b) Export ---------------------------------------------------------------------------------------


GNU_TIME = "/usr/bin/time"


def _status_mb(pid: int, field: str) -> float | None:
    """A memory line of /proc/<pid>/status (VmRSS, VmHWM) in MB; None once the process is gone."""
    try:
        line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) / 1024


def _exporter_pid(pid: int, wrapped: bool) -> int | None:
    """The export's own process: the child itself, or the one child of GNU time."""
    if not wrapped:
        return pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def bench_export(export_format: str) -> dict:
    """``manage.py export`` of every metric event of 31 days in a child process (this process' environment:
    DATABASE_URL and the rest), and its peak resident memory.

    The peak is GNU time's "maximum resident set size" of the export (``/usr/bin/time -f %M``), or without
    GNU time the highest VmHWM sampled. Not this process' ``getrusage(RUSAGE_CHILDREN)`` nor the child's
    ``wait4`` rusage: Linux carries the forking process' peak RSS over exec into the child's ``ru_maxrss``
    (subprocess forks this benchmark, which holds hundreds of MB), so that figure is this process', not the
    export's. GNU time is small when it forks the export."""
    from analytics.platform.data_export import export_streams

    what = "events"
    assert what in export_streams(), sorted(export_streams())
    with tempfile.TemporaryDirectory(prefix="tw-export-") as directory:
        output = Path(directory) / f"events.{export_format}"
        command = [sys.executable, str(ROOT / "manage.py"), "export", "--what", what, "--format", export_format,
                   "--days", "31", "--output", str(output)]
        peak_file = Path(directory) / "peak"
        wrapped = Path(GNU_TIME).exists()
        if wrapped:
            command = [GNU_TIME, "-f", "%M", "-o", str(peak_file), *command]
        errors = Path(directory) / "stderr"
        started = time.perf_counter()
        with errors.open("wb") as sink:  # the child's own copy stays open
            child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=sink)
        samples = []  # (seconds, VmRSS MB, VmHWM MB) every half second: flat, or growing with the rows written
        while child.poll() is None:
            exporter = _exporter_pid(child.pid, wrapped)
            rss = _status_mb(exporter, "VmRSS") if exporter else None
            if rss is not None:
                samples.append((time.perf_counter() - started, rss, _status_mb(exporter, "VmHWM") or rss))
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        stderr = errors.read_bytes().decode()
        assert child.returncode == 0, stderr[-2000:]
        if wrapped:
            peak_mb = int(peak_file.read_text().split()[-1]) / 1024  # KiB
        else:
            peak_mb = max((hwm for _, _, hwm in samples), default=float("nan"))
        lines = 0
        with output.open("rb") as file:
            while chunk := file.read(1 << 24):
                lines += chunk.count(b"\n")
        rows = lines - 1 if export_format == "csv" else lines  # CSV has a header line
        size = output.stat().st_size
    reported = int(stderr.split()[0])  # "<n> events exported to <file>"
    assert reported == rows, (reported, rows)
    timeline = [samples[int(len(samples) * share)] for share in (0.02, 0.25, 0.5, 0.75) if samples] + samples[-1:]
    print(f"export {export_format}: {rows:,} rows in {seconds:.0f} s ({rows / seconds:,.0f} rows/s), "
          f"peak RSS {peak_mb:.0f} MB ({'GNU time' if wrapped else 'highest VmHWM sampled'}), {size / 1e9:.2f} GB; "
          "RSS over time: " + ", ".join(f"{rss:.0f} MB at {at:.0f} s" for at, rss, _ in timeline), flush=True)
    return {"format": export_format, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "peak_mb": peak_mb, "bytes": size, "timeline": [(at, rss) for at, rss, _ in timeline],
            "peak_source": "GNU time" if wrapped else "VmHWM"}


# --- The run and its report ---------------------------------------------------------------------------


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def cpu_steal_seconds() -> float | None:
    """CPU time the hypervisor gave to others since boot (/proc/stat's steal column), all cores: a run that
    loses a large share of its wall time this way measured a slower machine."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run(total: int, executions: int, runs: int, export: bool, only: str | None, profile: str | None) -> dict:
    from tests.servers import start_postgres

    server = start_postgres({"work_mem": WORK_MEM, "shared_buffers": "512MB"})
    data_dir = tempfile.mkdtemp(prefix="tw-bench-reads-")
    try:
        setup_django(server.url("postgres"), data_dir)
        from django.db import connection

        results: dict = {"total": total, "load_before": load_average()}
        end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
        loaded = load_events(total, end)
        print(f"loaded {total:,} events in {loaded['load_seconds']:.0f} s", flush=True)
        results["executions"] = load_executions(executions, end)
        print(f"loaded {executions:,} executions ({results['executions']['execution_events']:,} events) in "
              f"{results['executions']['load_seconds']:.0f} s", flush=True)
        complete_series()
        jobs = run_jobs(end)
        print(f"rollups built in {jobs['rollups_s']:.0f} s; leaderboards in {jobs['boards_s']:.1f} s; health "
              f"snapshots in {jobs['health_s']:.1f} s", flush=True)
        results.update(rollups_s=jobs["rollups_s"], boards_s=jobs["boards_s"], health_s=jobs["health_s"])
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            cursor.execute("SELECT count(*) FROM analytics_metricevent")
            results["events_stored"] = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM analytics_metricevent e JOIN analytics_metricseries s "
                           "ON s.id = e.series_id WHERE s.name = %s AND e.timestamp > %s",
                           [HOT, end - timedelta(hours=24)])
            results["hot_24h"] = cursor.fetchone()[0]
            cursor.execute("SHOW server_version")
            results["postgres"] = cursor.fetchone()[0]
        results["load_reads"] = load_average()
        steal_before, reads_started = cpu_steal_seconds(), time.perf_counter()
        results["reads"] = bench_reads(loaded["org"], results["executions"]["top_skill"], jobs["jobs"], runs, only,
                                       profile)
        steal_after = cpu_steal_seconds()
        results["reads_s"] = time.perf_counter() - reads_started
        results["steal_s"] = None if steal_before is None or steal_after is None else steal_after - steal_before
        results["load_export"] = load_average()
        results["exports"] = [bench_export(fmt) for fmt in ("csv", "jsonl")] if export else []
        results["load_after"] = load_average()
        return results
    finally:
        from django.db import connections

        connections.close_all()
        server.stop()


def report(results: dict, runs: int) -> str:
    import django
    import psycopg

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    loaded = results["executions"]
    lines = [
        HEADING,
        "",
        f"`python -m bench.reads` on {datetime.now(UTC):%Y-%m-%d}: {machine()}; PostgreSQL {results['postgres']} "
        f"(work_mem {WORK_MEM}, shared_buffers 512MB, started by the bench); Python {platform.python_version()}, "
        f"Django {django.get_version()}, psycopg {psycopg.__version__}. Load average (1/5/15 min) before the load "
        f"{results['load_before']}, before the reads {results['load_reads']}, before the export "
        f"{results['load_export']}. "
        + (f"CPU time taken by the hypervisor (steal) during the reads: {results['steal_s']:.1f} s of "
           f"{results['reads_s']:.0f} s wall time on {os.cpu_count()} cores." if results["steal_s"] is not None
           else "CPU steal: not available."),
        "",
        f"Data: the {results['total']:,} metric events of *Metrics at scale* (`bench.metrics.load_events`: "
        f"`{HOT}` has {results['hot_24h']:,} in the last 24 hours) and {loaded['executions']:,} skill "
        f"executions over the same {DAYS} days ({loaded['skills']} skills of Zipf-like popularity, "
        f"{loaded['orgs']} orgs with {loaded['users']:,} users in all; among the skills one new and growing, one "
        f"fading, one failing, one getting slower), stored as `record_executions` stores them: "
        f"{loaded['execution_events']:,} more metric events (`skill.latency_ms`, `skill.executions`), "
        f"{results['events_stored']:,} in all; {loaded['ratings']:,} ratings, {loaded['installs']:,} installs; "
        "the monitoring demo's 4 services with 30 days of checks and the alert demo's rules. Then the jobs of "
        f"`analytics/schedule.py`: the rollups (first build {results['rollups_s']:.0f} s) and the leaderboards "
        f"({results['boards_s']:.1f} s) and the health snapshots ({results['health_s']:.1f} s, every minute: the "
        "health page and the ops home read them), run again before each row as the scheduler would (untimed).",
        "",
        "Server time: Django's test client in process (middleware, views, templates; no network, no gunicorn), "
        "admin pages as a staff superuser over all orgs, API reads with a read-only token of org `bench` "
        f"(it holds the hot metric and half the executions). Request tracking off. 1 warm-up, then {runs} runs; "
        f"p95 by linear interpolation. Target: p95 ≤ {TARGET_MS} ms.",
        "",
        "| page or endpoint | range | p50 | p95 | target | |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["reads"]:
        lines.append(f"| {row['what']} | {row['range']} | {row['p50']:.0f} ms | {row['p95']:.0f} ms | "
                     f"≤ {TARGET_MS} ms | {met(row['p95'] <= TARGET_MS)} |")
    if results["exports"]:
        lines += [
            "",
            "Export: `manage.py export --what events --format <csv|jsonl> --days 31 --output <file>` in a child "
            "process, every metric event of the window (the executions' events too); peak resident memory of the "
            + ("export process from GNU time (`/usr/bin/time -f %M`)" if results["exports"][0]["peak_source"]
               == "GNU time" else "export process: the highest VmHWM sampled from /proc")
            + ", and its resident memory sampled from /proc during the run (first, middle, last sample). "
            f"Target: peak ≤ {TARGET_MB} MB.",
            "",
            "| format | rows | time | rows/s | file | resident during the run | peak memory | target | |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in results["exports"]:
            during = row["timeline"]
            middle = during[len(during) // 2] if during else None
            trace = " / ".join(f"{rss:.0f}" for _, rss in (during[:1] + [middle] + during[-1:])) + " MB" \
                if during else "not sampled"
            lines.append(f"| {row['format']} | {row['rows']:,} | {row['seconds']:.0f} s | {row['rows_per_s']:,.0f} | "
                         f"{row['bytes'] / 1e9:.2f} GB | {trace} | {row['peak_mb']:.0f} MB | ≤ {TARGET_MB} MB | "
                         f"{met(row['peak_mb'] <= TARGET_MB)} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--executions", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=RUNS, help=f"Measured runs per row (default {RUNS}).")
    parser.add_argument("--no-export", action="store_true", help="Skip the export (development).")
    parser.add_argument("--only", help="Only the reads whose path contains this (development; implies --no-write).")
    parser.add_argument("--profile", metavar="FILE",
                        help="Also write a cProfile, the SQL and EXPLAIN ANALYZE of each row over the target here.")
    parser.add_argument("--no-write", action="store_true", help="Print the report, leave docs/ alone.")
    args = parser.parse_args(argv)
    results = run(args.events, args.executions, args.runs, not args.no_export, args.only, args.profile)
    section = report(results, args.runs)
    print(section)
    if not (args.no_write or args.only or args.no_export):
        print(f"written to {replace_section(HEADING, section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
