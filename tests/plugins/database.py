"""Chooses the database of the test run, before Django's settings are read.

``make test`` runs the suite twice: on SQLite, then with ``TOOLWEAVER_TEST_DB=postgres``
on a real PostgreSQL that this plugin starts from the machine's binaries (unix socket
only, thrown away after) and stops by its pid.

Every run gets its own data directory, so tests never touch ``~/.toolweaver``; the
SQLite test database is a file there, so a real worker process can share it.
"""

import os
import shutil
import tempfile

import pytest

_state = {}


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    data_dir = tempfile.mkdtemp(prefix="tw-test-")
    _state["data_dir"] = data_dir
    os.environ["TOOLWEAVER_DATA_DIR"] = data_dir
    os.environ["ANALYTICS_DB_PATH"] = os.path.join(data_dir, "analytics.db")
    os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-" + "x" * 40)
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["DJANGO_SECURE_SSL"] = "false"
    # Request tracking writes from a background thread, which a test's open transaction would block;
    # the tests of tracking turn it on with a transactional database.
    os.environ["ANALYTICS_REQUEST_TRACKING"] = "false"
    os.environ["ANALYTICS_TRACKING_FLUSH_SECONDS"] = "0.5"
    for name in ("DATABASE_URL", "ANALYTICS_DB_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)

    if os.environ.get("TOOLWEAVER_TEST_DB", "sqlite") == "postgres":
        from tests.servers import in_ci, start_postgres

        try:
            server = start_postgres({"work_mem": "64MB"})
        except FileNotFoundError as error:
            if in_ci():
                raise
            pytest.exit(f"skipping the PostgreSQL run: {error}", returncode=0)
        _state["postgres"] = server
        os.environ["DATABASE_URL"] = server.url("toolweaver")
        os.environ["TOOLWEAVER_TEST_DB_NAME"] = "test_toolweaver"
    else:
        os.environ["TOOLWEAVER_TEST_DB_NAME"] = os.path.join(data_dir, "test.db")
    return (yield)


def pytest_report_header(config):
    return f"database: {os.environ.get('TOOLWEAVER_TEST_DB', 'sqlite')} (data dir {_state.get('data_dir')})"


def pytest_unconfigure(config):
    server = _state.pop("postgres", None)
    if server is not None:
        server.stop()
    data_dir = _state.pop("data_dir", None)
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
