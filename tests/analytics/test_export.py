"""``manage.py export``: metric events, skill executions and incidents of a window, as CSV or JSON lines.

The output is read back and checked cell by cell; the org and window filters are checked by what is left
out; secrets stored beside the exported records never appear; bad arguments exit non-zero with one line;
and a large export keeps Python's memory flat (rows are streamed, never all held).
"""

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command, execute_from_command_line
from django.db import connection

from alerts.models import AlertIncident, AlertRule
from alerts.notifications.models import NotificationChannel
from analytics.models import ApiToken, MetricEvent, MetricSeries, Organization, Skill, SkillExecution
from analytics.platform.data_export import export_rows
from analytics.platform.windows import Window
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

NOW = datetime.now(UTC).replace(microsecond=0)
HOUR_AGO = NOW - timedelta(hours=1)
LAST_WEEK = NOW - timedelta(days=7)


def export(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue().strip()


@pytest.fixture
def records(personas):
    """In acme and globex: metric events, executions and incidents an hour ago, and older ones last week."""
    acme, globex = personas.org, personas.other_org
    ingest_metric_items(acme, [
        MetricItem("queue.depth", 3.5, "gauge", "jobs", "worker", {"host": "a", "zone": "eu"}, HOUR_AGO, "e-1"),
        MetricItem("queue.depth", 9.0, "gauge", "jobs", "worker", {"host": "a", "zone": "eu"}, LAST_WEEK),
    ])
    ingest_metric_items(globex, [MetricItem("cpu", 0.5, "gauge", "", "", {}, HOUR_AGO)])
    Skill.objects.create(skill_id="parse_json")
    SkillExecution.objects.create(skill_id="parse_json", org=acme, user_id="u1", success=False, latency_ms=12.5,
                                  error_type="Timeout", skill_version="1.2", timestamp=HOUR_AGO, event_id="x-1")
    SkillExecution.objects.create(skill_id="parse_json", org=globex, success=True, latency_ms=3.0,
                                  timestamp=HOUR_AGO)
    rule = AlertRule.objects.create(org=acme, name="deep queue", metric_name="queue.depth", condition_operator="gt",
                                    threshold=5)
    incident = AlertIncident.objects.create(
        rule=rule, rule_name=rule.name, org=acme, group={"host": "a"}, group_key='{"host":"a"}', severity="warning",
        value=7.0, threshold=5, condition="avg > 5", triggered_at=HOUR_AGO, status="resolved",
        resolved_at=NOW, resolved_by="ops", notes='resolved by ops: "fixed", see\nticket 7',
    )
    AlertIncident.objects.create(rule=rule, rule_name=rule.name, org=acme, severity="warning", threshold=5,
                                 triggered_at=LAST_WEEK, status="resolved", resolved_at=LAST_WEEK)
    return personas, incident


@pytest.mark.django_db
def test_metric_events_as_csv_for_one_org_and_the_last_day(records):
    output, summary = export("--what", "events", "--format", "csv", "--days", "1", "--org", "acme")
    rows = list(csv.reader(io.StringIO(output)))
    assert rows == [
        ["timestamp", "org", "metric_name", "metric_type", "unit", "source", "tags", "value", "event_id"],
        [HOUR_AGO.isoformat().replace("+00:00", "Z"), "acme", "queue.depth", "gauge", "jobs", "worker",
         '{"host": "a", "zone": "eu"}', "3.5", "e-1"],
    ]
    assert summary == "1 events exported to stdout"


@pytest.mark.django_db
def test_executions_as_json_lines_for_every_org_between_start_and_end(records):
    start, end = (HOUR_AGO - timedelta(minutes=5)).isoformat(), (HOUR_AGO + timedelta(minutes=5)).isoformat()
    output, _ = export("--what", "executions", "--format", "jsonl", "--start", start, "--end", end)
    lines = [json.loads(line) for line in output.splitlines()]
    at = HOUR_AGO.isoformat().replace("+00:00", "Z")
    assert lines == [
        {"timestamp": at, "org": "acme", "skill_id": "parse_json", "skill_version": "1.2", "user_id": "u1",
         "success": False, "latency_ms": 12.5, "error_type": "Timeout", "event_id": "x-1"},
        {"timestamp": at, "org": "globex", "skill_id": "parse_json", "skill_version": "", "user_id": None,
         "success": True, "latency_ms": 3.0, "error_type": "", "event_id": None},
    ]  # the same time: ordered by id, as they were recorded


@pytest.mark.django_db
def test_incidents_to_a_file_keep_quotes_and_newlines_and_leave_out_older_ones(records, tmp_path):
    _, incident = records
    target = tmp_path / "incidents.csv"
    _, summary = export("--what", "incidents", "--days", "2", "--output", str(target))
    assert summary == f"1 incidents exported to {target}"
    assert not (tmp_path / "incidents.csv.partial").exists()
    with target.open(newline="") as file:
        (row,) = list(csv.DictReader(file))
    assert row["id"] == str(incident.pk) and row["rule_id"] == str(incident.rule_id)
    assert (row["org"], row["rule_name"], row["status"], row["severity"]) == ("acme", "deep queue", "resolved",
                                                                              "warning")
    assert (row["group"], row["value"], row["threshold"], row["condition"]) == ('{"host": "a"}', "7.0", "5.0",
                                                                                "avg > 5")
    assert (row["resolved_by"], row["acknowledged_at"], row["silenced_until"]) == ("ops", "", "")
    assert row["notes"] == 'resolved by ops: "fixed", see\nticket 7'


@pytest.mark.django_db
def test_secrets_stored_beside_the_records_never_appear_in_any_export(records):
    personas, _ = records
    channel_secret = "whsec-" + "S" * 30
    NotificationChannel.objects.create(name="hook", kind="webhook", config={"url": "https://hooks.example.com"},
                                       secret=channel_secret)
    token = ApiToken.objects.get(pk=personas.member.token.pk)
    secrets = [personas.member.raw_token, token.key_hash, channel_secret]
    for what in ("events", "executions", "incidents"):
        for export_format in ("csv", "jsonl"):
            output, _ = export("--what", what, "--format", export_format, "--days", "30")
            assert output.count("\n") >= 2, (what, export_format)  # a header or a record at least: not empty
            for secret in secrets:
                assert secret not in output, (what, export_format)


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["--what", "ratings"], "--what: 'ratings' is not one of events, executions, incidents."),
    (["--what", "events", "--format", "xml"], "--format: 'xml' is not one of csv, jsonl."),
    (["--what", "events", "--days", "1", "--start", "2026-01-01"],
     "--days: use one window form: hours, days, or start and end."),
    (["--what", "events", "--start", "yesterday"], "--start: 'yesterday' is not an ISO-8601 date-time."),
    (["--what", "events", "--start", "2026-02-01", "--end", "2026-01-01"], "--end: must be after start."),
    (["--what", "events", "--org", "nobody"], "--org: no org with the slug 'nobody'."),
    (["--what", "events", "--output", "/nonexistent-dir/x.csv"], "--output: /nonexistent-dir is not a directory"),
])
def test_bad_arguments_exit_non_zero_with_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "export", *args])
    captured = capsys.readouterr()
    assert exited.value.code == 1
    assert captured.err.strip() == f"CommandError: {message}"
    assert captured.out == ""


class CountingSink:
    """Counts what an export writes, holding none of it."""

    def __init__(self):
        self.lines = 0

    def write(self, text: str) -> None:
        self.lines += text.count("\n")


@pytest.mark.django_db
def test_a_large_export_streams_with_flat_memory():
    # 30,000 events. Held all at once as row tuples they take about 19 MB of Python objects (measured: 32 MB
    # for 50,000); streamed, the peak is a chunk's worth (about 2 MB) however many rows there are.
    rows = 30_000
    org = Organization.objects.create(slug="big")
    series = MetricSeries.objects.create(org=org, name="load", tags={"host": "h1"})
    start = NOW - timedelta(hours=2)
    as_db_time = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:  # plain inserts: ORM objects would take most of the test's time
        cursor.executemany(
            f"INSERT INTO {MetricEvent._meta.db_table} (series_id, org_id, timestamp, value) VALUES (%s, %s, %s, %s)",
            [(series.pk, org.pk, as_db_time(start + timedelta(milliseconds=index)), index * 0.5)
             for index in range(rows)],
        )
    window = Window(NOW - timedelta(hours=3), NOW)
    assert export_rows("events", "jsonl", window, None, jsonl := CountingSink()) == rows
    assert jsonl.lines == rows

    sink = CountingSink()
    tracemalloc.start()
    try:
        count = export_rows("events", "csv", window, None, sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows and sink.lines == rows + 1  # and a header
    assert peak < 6 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
