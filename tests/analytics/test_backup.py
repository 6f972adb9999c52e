"""Backup and restore of the whole database, on the database of the run (SQLite, or a real PostgreSQL).

The round trip: a backup taken while another thread keeps committing rows, the database wiped, the
backup restored; every table then holds exactly the rows it held at one moment of the backup (same
counts, same checksums), and the concurrent writer's rows are a gap-free prefix of what it wrote.
Restore refuses a missing, foreign or damaged file and leaves the database as it was. The daily job
keeps the newest BACKUP_KEEP dated backups.
"""

import hashlib
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command, execute_from_command_line
from django.db import connection

from alerts.models import AlertIncident, AlertRule
from analytics import tasks
from analytics.models import ApiToken, MetricEvent, MetricSeries, Organization, Skill, SkillExecution
from analytics.platform.backup import (
    BackupError,
    _pg_dump,
    backup,
    check_backup_file,
    pg_environment,
    prune_backups,
    restore,
)
from analytics.platform.collectors import declared_periodic_jobs

WRITER_TABLE = MetricEvent._meta.db_table


def table_checksums(exclude=()) -> dict[str, tuple[int, str]]:
    """{table: (rows, sha256 of its rows in a fixed order)} for every table of the database."""
    found = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            if table in exclude:
                continue
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = sorted(repr(row) for row in cursor.fetchall())
            found[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return found


def seed(events: int = 3000) -> MetricSeries:
    """Some rows in the tables that matter: orgs, a token, metric events, executions, a rule and an incident."""
    now = datetime.now(UTC)
    org = Organization.objects.create(slug="acme", name="Acme")
    ApiToken.issue(org, name="ci")
    series = MetricSeries.objects.create(org=org, name="queue.depth", tags={"host": "a"})
    as_db_time = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {WRITER_TABLE} (series_id, org_id, timestamp, value, event_id) VALUES (%s, %s, %s, %s, %s)",
            [(series.pk, org.pk, as_db_time(now - timedelta(seconds=index)), index * 0.25, f"seed-{index}")
             for index in range(events)],
        )
    Skill.objects.create(skill_id="parse_json")
    SkillExecution.objects.create(skill_id="parse_json", org=org, success=True, latency_ms=4.5, timestamp=now)
    rule = AlertRule.objects.create(org=org, name="deep queue", metric_name="queue.depth", condition_operator="gt",
                                    threshold=5)
    AlertIncident.objects.create(rule=rule, rule_name=rule.name, org=org, severity="warning", threshold=5,
                                 triggered_at=now)
    return series


class Writer(threading.Thread):
    """Commits one metric event at a time (event ids w-0, w-1, …) until stopped, on its own connection."""

    def __init__(self, series: MetricSeries):
        super().__init__(daemon=True)
        self.series, self.committed, self.error = series, 0, None
        self.stopping = threading.Event()

    def run(self):
        try:
            while not self.stopping.is_set():
                MetricEvent.objects.create(series_id=self.series.pk, org_id=self.series.org_id,
                                           timestamp=datetime.now(UTC), value=1.0, event_id=f"w-{self.committed}")
                self.committed += 1
                time.sleep(0.0005)
        except Exception as error:  # reported by the test
            self.error = error
        finally:
            connection.close()

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while self.committed < count and time.monotonic() < deadline:
            time.sleep(0.005)
        assert self.committed >= count, self.error


@pytest.mark.django_db(transaction=True)
def test_backup_while_writes_go_on_then_wipe_and_restore_gives_the_same_rows(tmp_path):
    series = seed()
    writer = Writer(series)
    writer.start()
    try:
        writer.wait_for(20)
        expected = table_checksums(exclude={WRITER_TABLE})
        seeded = set(MetricEvent.objects.exclude(event_id__startswith="w-").values_list("id", "event_id", "value"))
        committed_before = writer.committed
        result = backup(tmp_path / "live.backup")
        committed_after = writer.committed
        writer.wait_for(committed_after + 20)  # and it goes on writing after the backup
    finally:
        writer.stopping.set()
        writer.join(10)
    assert writer.error is None
    assert result.path == tmp_path / "live.backup" and result.size_bytes > 0
    assert oct(os.stat(result.path).st_mode & 0o777) == "0o600"

    call_command("flush", interactive=False, verbosity=0)
    assert MetricEvent.objects.count() == 0 and Organization.objects.count() == 0

    restore(result.path)

    assert table_checksums(exclude={WRITER_TABLE}) == expected
    assert set(MetricEvent.objects.exclude(event_id__startswith="w-").values_list("id", "event_id", "value")) == seeded
    # The concurrent writer's rows: one snapshot, so a prefix of what it wrote, without gaps, holding every row
    # committed before the backup began and none written after it ended.
    written = sorted(int(event_id[2:]) for event_id in
                     MetricEvent.objects.filter(event_id__startswith="w-").values_list("event_id", flat=True))
    assert written == list(range(len(written)))
    assert committed_before <= len(written) <= committed_after


@pytest.mark.django_db(transaction=True)
def test_a_backup_is_one_dated_private_self_contained_file(tmp_path):
    seed(events=10)
    path = backup(tmp_path).path
    assert path.parent == tmp_path and path.name.startswith("toolweaver-")
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no -wal, -shm or .partial beside it
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"  # it holds token hashes and channel secrets
    if connection.vendor == "sqlite":
        assert path.suffix == ".sqlite3"
        with sqlite3.connect(path) as copy:
            assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # needs no -wal file
            assert copy.execute(f"SELECT count(*) FROM {WRITER_TABLE}").fetchone() == (10,)
    else:
        assert path.suffix == ".pgdump" and path.read_bytes().startswith(b"PGDMP")


def other_kind_of_backup(path):
    """A real file of the other kind: a pg_dump header on SQLite, a SQLite database on PostgreSQL."""
    if connection.vendor == "sqlite":
        path.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 200)
        return "is a postgresql backup; this database is sqlite"
    with sqlite3.connect(path) as database:
        database.execute("CREATE TABLE notes (body TEXT)")
    return "is a sqlite backup; this database is postgresql"


def missing_file(path):
    return "no such backup file"


def not_a_backup(path):
    path.write_text("id,value\n1,2\n")
    return "is not a backup"


def damaged_backup(path):
    """A real backup of this database, cut off in the middle."""
    backup(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    # PostgreSQL: refused by the check (pg_restore --list cannot read it) or by the restore's one transaction.
    return "damaged" if connection.vendor == "sqlite" else "pg_restore"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("make_file", [
    missing_file, not_a_backup, other_kind_of_backup, damaged_backup,
], ids=["missing", "not a backup", "other database kind", "damaged"])
def test_restore_refuses_a_bad_file_and_leaves_the_database_as_it_was(tmp_path, make_file):
    seed()
    before = table_checksums()
    path = tmp_path / "candidate.backup"
    expected_message = make_file(path)
    assert expected_message
    with pytest.raises(BackupError) as refused:
        restore(path)
    assert expected_message in str(refused.value)
    assert table_checksums() == before


def test_a_sqlite_database_of_something_else_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as database:
        database.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(BackupError, match="not a backup of this project"):
        check_backup_file(path, "sqlite")


@pytest.mark.django_db
def test_a_backup_never_overwrites_a_file(tmp_path):
    existing = tmp_path / "precious.backup"
    existing.write_text("keep me")
    with pytest.raises(BackupError, match="already exists"):
        backup(existing)
    assert existing.read_text() == "keep me"


def test_postgres_credentials_go_by_environment_and_never_into_messages(tmp_path):
    settings_dict = {"NAME": "analytics", "USER": "app", "PASSWORD": "pw-Secret-0451", "HOST": str(tmp_path),
                     "PORT": "5999", "OPTIONS": {"sslmode": "disable", "connect_timeout": "2"}}
    env = pg_environment(settings_dict)
    assert (env["PGPASSWORD"], env["PGUSER"], env["PGHOST"], env["PGPORT"]) == ("pw-Secret-0451", "app",
                                                                                 str(tmp_path), "5999")
    assert (env["PGSSLMODE"], env["PGCONNECT_TIMEOUT"]) == ("disable", "2")
    # The real pg_dump, pointed at a server that is not there: it fails, and says so without the password.
    with pytest.raises(BackupError) as failed:
        _pg_dump(settings_dict, tmp_path / "out.pgdump")
    assert str(failed.value).startswith("pg_dump failed: ")
    assert "pw-Secret-0451" not in str(failed.value)


def test_prune_keeps_the_newest_dated_backups_and_nothing_else(tmp_path):
    names = [f"toolweaver-2026120{day}T024100000000Z.{kind}" for day, kind in
             [(1, "sqlite3"), (2, "pgdump"), (3, "sqlite3"), (4, "sqlite3")]]
    for name in [*names, "notes.txt", "toolweaver-before-upgrade.sqlite3"]:
        (tmp_path / name).write_text("x")
    removed = prune_backups(tmp_path, keep=2)
    assert [path.name for path in removed] == names[:2]
    assert sorted(os.listdir(tmp_path)) == sorted([*names[2:], "notes.txt", "toolweaver-before-upgrade.sqlite3"])
    with pytest.raises(BackupError, match="keep must be at least 1"):
        prune_backups(tmp_path, keep=0)


@pytest.mark.django_db(transaction=True)
def test_the_daily_job_writes_a_dated_backup_and_keeps_backup_keep(settings, tmp_path):
    job = next(job for job in declared_periodic_jobs() if job.task == "analytics.backup_database")
    assert job.crontab == {"minute": "41", "hour": "2"}  # daily, 02:41 UTC
    settings.BACKUP_DIR, settings.BACKUP_KEEP = tmp_path / "backups", 2
    seed(events=10)
    results = [tasks.backup_database() for _ in range(3)]
    kept = sorted(os.listdir(tmp_path / "backups"))
    assert kept == sorted(os.path.basename(result["path"]) for result in results[1:])
    assert results[2]["removed"] == [os.path.basename(results[0]["path"])]
    check_backup_file(tmp_path / "backups" / kept[-1], connection.vendor)  # a whole, restorable file


@pytest.mark.django_db(transaction=True)
def test_the_commands_print_the_backup_and_refuse_a_bad_restore_in_one_line(tmp_path, capsys):
    seed(events=10)
    call_command("backup", str(tmp_path))
    (written,) = os.listdir(tmp_path)
    assert capsys.readouterr().out.strip() == str(tmp_path / written)

    call_command("restore", str(tmp_path / written), "--noinput")
    assert capsys.readouterr().out.startswith(f"restored {connection.vendor} database from {tmp_path / written}")
    assert MetricEvent.objects.count() == 10

    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "restore", "--noinput", str(tmp_path / "nope.backup")])
    assert exited.value.code == 1
    assert capsys.readouterr().err.strip() == f"CommandError: {tmp_path / 'nope.backup'}: no such backup file"
