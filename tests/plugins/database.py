"""Chooses the database of the test run, before Django's settings are read.

``make test`` runs the suite twice: on SQLite, then with ``TOOLWEAVER_TEST_DB=postgres``
on a real PostgreSQL that this plugin starts from the machine's binaries (unix socket
only, thrown away after) and stops by its pid.

Every run gets its own data directory, so tests never touch ``~/.toolweaver``; the
SQLite test database is a file there, so a real worker process can share it.

Without PostgreSQL's binaries the PostgreSQL run runs nothing: with ``CI=true`` that stops the run
with an error; otherwise it exits 0 (a machine without PostgreSQL can still ``make test``) and says
so loudly in the terminal summary at the end, where nobody can miss it.

It also loads ``tests.plugins.ci``: under ``CI=true`` every skip is a failure.
"""

import os
import shutil
import tempfile

import pytest

pytest_plugins = ["tests.plugins.ci"]

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
                raise pytest.UsageError(f"CI=true: the PostgreSQL run cannot start PostgreSQL: {error}") from error
            _state["postgres_missing"] = str(error)
            os.environ["TOOLWEAVER_TEST_DB_NAME"] = os.path.join(data_dir, "test.db")  # nothing will use it
        else:
            _state["postgres"] = server
            os.environ["DATABASE_URL"] = server.url("toolweaver")
            os.environ["TOOLWEAVER_TEST_DB_NAME"] = "test_toolweaver"
    else:
        os.environ["TOOLWEAVER_TEST_DB_NAME"] = os.path.join(data_dir, "test.db")
    return (yield)


def pytest_report_header(config):
    if "postgres_missing" in _state:
        return f"database: postgres NOT AVAILABLE ({_state['postgres_missing']}): nothing will run"
    return f"database: {os.environ.get('TOOLWEAVER_TEST_DB', 'sqlite')} (data dir {_state.get('data_dir')})"


def pytest_collection_modifyitems(config, items):
    """Without PostgreSQL the PostgreSQL run runs nothing (rather than running on SQLite a second time).

    Tests marked ``postgres_only`` (load and fault tests whose subject is the production database) are
    deselected on the SQLite run, and those marked ``sqlite_only`` (child processes that use SQLite whatever
    the run's database: ``make run``, a fresh install, the client's embedded store) on the PostgreSQL run —
    deselected, not skipped: under ``CI=true`` a skip is a failure.
    """
    if "postgres_missing" in _state and items:
        config.hook.pytest_deselected(items=list(items))
        items[:] = []
        return
    other = "sqlite_only" if os.environ.get("TOOLWEAVER_TEST_DB", "sqlite") == "postgres" else "postgres_only"
    elsewhere = [item for item in items if item.get_closest_marker(other)]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if not item.get_closest_marker(other)]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    missing = _state.get("postgres_missing")
    if missing is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section("WARNING: the PostgreSQL run did NOT run", sep="!", red=True, bold=True)
    write(f"TOOLWEAVER_TEST_DB=postgres, but PostgreSQL cannot be started here: {missing}.", red=True, bold=True)
    write("Not one test ran on PostgreSQL: this suite is tested on SQLite only.", red=True, bold=True)
    write("Install PostgreSQL 15 (apt-get install postgresql; .ci/run does it) and run `make test` again.",
          red=True, bold=True)
    write("Exit status 0 outside CI; with CI=true this is an error.", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if "postgres_missing" in _state and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK  # said loudly above; a machine without PostgreSQL may still test


def pytest_unconfigure(config):
    server = _state.pop("postgres", None)
    if server is not None:
        server.stop()
    data_dir = _state.pop("data_dir", None)
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
