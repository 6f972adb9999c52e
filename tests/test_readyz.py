"""``/readyz`` answers 503 when the platform is not ready: database unreachable, or migrations pending.

Pending migrations are made in the test's own transaction (a recorder row removed, rolled back after).
An unreachable database is the real thing: the platform's gunicorn pointed at a SQLite path that has
become a directory, and at a PostgreSQL that was stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from tests.servers import find_binary, missing_server, start_postgres, start_web_server, web_servers

ROOT = Path(__file__).resolve().parents[1]


def leaf_migration(app_label: str) -> tuple[str, str]:
    loader = MigrationLoader(connection)
    (leaf,) = [node for node in loader.graph.leaf_nodes() if node[0] == app_label]
    return leaf


@pytest.mark.django_db
def test_ready_with_every_migration_applied(client):
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.django_db
def test_pending_migrations_answer_503_with_their_number(client):
    recorder = MigrationRecorder(connection)
    for pending, app_label in enumerate(("analytics", "alerts"), start=1):
        app, name = leaf_migration(app_label)
        assert recorder.migration_qs.filter(app=app, name=name).delete()[0] == 1  # "not applied" from now on
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "pending_migrations": pending}
    assert client.get("/healthz").status_code == 200  # the process itself is alive


# --- A real server whose database is gone ----------------------------------------------------------------


def server_env(tmp_path: Path, **database) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("TOOLWEAVER_TEST_DB_NAME", "DATABASE_URL", "ANALYTICS_DB_URL")}
    env.update(TOOLWEAVER_DATA_DIR=str(tmp_path / "data"), DJANGO_DEBUG="false", DJANGO_SECURE_SSL="false",
               ANALYTICS_DB_PATH=str(tmp_path / "db" / "analytics.db"), **database)
    return env


@pytest.fixture
def platform_server(tmp_path):
    yield from web_servers(lambda index, **database: start_web_server(
        server_env(tmp_path, **database), tmp_path / f"server-{index}", cwd=ROOT))


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_unreadable_sqlite_database_answers_503(platform_server, tmp_path):
    server = platform_server()
    database = tmp_path / "db" / "analytics.db"
    assert database.is_file()  # created empty by the settings at start-up
    # A database file without any migration applied: every migration on disk is pending.
    on_disk = len(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    assert get(server.url + "/readyz") == (503, {"status": "unavailable", "pending_migrations": on_disk})
    # Now the path cannot be opened at all: a directory where the database file was.
    for leftover in database.parent.glob("analytics.db*"):
        leftover.unlink()
    database.mkdir()
    assert get(server.url + "/readyz") == (503, {"status": "unavailable", "database": "OperationalError"})
    assert get(server.url + "/healthz") == (200, {"status": "ok"})
    shutil.rmtree(database)


def test_a_stopped_postgresql_answers_503(platform_server):
    if not find_binary("initdb", ("/usr/lib/postgresql/*/bin/initdb",)):
        missing_server("PostgreSQL server binaries (initdb, postgres) not found")
    postgres = start_postgres()
    url = postgres.url("toolweaver")
    socket_dir = postgres.socket_dir
    postgres.stop()  # stopped by its pid, its directory removed: nothing listens on the socket any more
    assert not socket_dir.exists()
    server = platform_server(DATABASE_URL=url, DATABASE_CONNECT_TIMEOUT="2")
    assert get(server.url + "/readyz") == (503, {"status": "unavailable", "database": "OperationalError"})
    assert get(server.url + "/healthz") == (200, {"status": "ok"})
