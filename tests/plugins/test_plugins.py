"""The test run's own rules: under CI=true a skip is a failure; a missing PostgreSQL is said loudly at the end.

Each case runs a small pytest session of its own in a child process, with only these plugins loaded
(no Django, no project settings, no third-party plugins), on test files written here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SKIPPING_TESTS = '''
import pytest

def test_passes():
    pass

def test_calls_skip_itself():
    pytest.skip("the frobnicator is not installed")

@pytest.mark.skipif(True, reason="marked to skip here")
def test_marked_skip():
    pass

@pytest.fixture
def server():
    pytest.skip("no server in the fixture")

def test_with_a_skipping_fixture(server):
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_failure():
    assert False
'''

SKIPPED_MODULE = '''
import pytest

pytest.skip("the whole module needs a GPU", allow_module_level=True)

def test_never_collected():
    pass
'''


def run_pytest(tmp_path: Path, files: dict[str, str], *args: str, **env: str) -> subprocess.CompletedProcess:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    child_env = {key: value for key, value in os.environ.items() if key not in ("CI", "TOOLWEAVER_TEST_DB")}
    # No third-party plugins (Django, schemathesis, ...): only what each case names with -p.
    child_env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q", *args,
         *files],
        cwd=tmp_path, env=child_env, capture_output=True, text=True, timeout=120,
    )


def test_outside_ci_skips_stay_skips(tmp_path):
    result = run_pytest(tmp_path, {"test_skips.py": SKIPPING_TESTS}, "-p", "tests.plugins.ci")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 3 skipped, 1 xfailed" in result.stdout


def test_under_ci_every_kind_of_skip_is_a_failure_with_its_reason(tmp_path):
    result = run_pytest(tmp_path, {"test_skips.py": SKIPPING_TESTS}, "-p", "tests.plugins.ci", CI="true")
    assert result.returncode == 1, result.stdout + result.stderr
    # A skip in a fixture or by a marker happens in the setup: pytest counts that failure as an error.
    assert "1 failed, 1 passed, 1 xfailed, 2 errors" in result.stdout
    for reason in ("the frobnicator is not installed", "marked to skip here", "no server in the fixture"):
        assert f"CI=true: a skip is a failure: {reason}" in result.stdout
    assert "skipped" not in result.stdout.splitlines()[-1]


def test_under_ci_a_module_skipped_at_collection_is_a_failure(tmp_path):
    files = {"test_module.py": SKIPPED_MODULE}
    outside = run_pytest(tmp_path, files, "-p", "tests.plugins.ci")
    assert "1 skipped" in outside.stdout.splitlines()[-1], outside.stdout
    inside = run_pytest(tmp_path, files, "-p", "tests.plugins.ci", CI="true")
    assert inside.returncode != 0, inside.stdout
    assert "CI=true: a skip is a failure: the whole module needs a GPU" in inside.stdout


def test_the_database_plugin_loads_the_ci_rule(tmp_path):
    result = run_pytest(tmp_path, {"test_skips.py": SKIPPING_TESTS}, "-p", "tests.plugins.database", CI="true")
    assert result.returncode == 1
    assert "CI=true: a skip is a failure: the frobnicator is not installed" in result.stdout


def no_postgres(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine without PostgreSQL: nothing on PATH, nothing in the versioned directories."""
    return {"TOOLWEAVER_TEST_DB": "postgres", "PATH": str(tmp_path / "empty-bin"),
            "TOOLWEAVER_POSTGRES_BINDIR": str(tmp_path / "no-postgresql" / "*" / "bin")}


def test_without_postgresql_the_postgres_run_exits_0_and_says_so_at_the_end(tmp_path):
    files = {"test_one.py": "def test_one():\n    pass\n\ndef test_two():\n    pass\n"}
    result = run_pytest(tmp_path, files, "-p", "tests.plugins.database", **no_postgres(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    warning = next(i for i, line in enumerate(lines) if "WARNING: the PostgreSQL run did NOT run" in line)
    assert "PostgreSQL server binaries (initdb, postgres) not found" in lines[warning + 1]
    assert "Not one test ran on PostgreSQL" in result.stdout
    # At the end: only the final count line comes after the warning; nothing ran.
    assert warning >= len(lines) - 8
    assert "2 deselected" in lines[-1] and "passed" not in lines[-1]


def test_without_postgresql_the_postgres_run_fails_under_ci(tmp_path):
    files = {"test_one.py": "def test_one():\n    pass\n"}
    result = run_pytest(tmp_path, files, "-p", "tests.plugins.database", CI="true", **no_postgres(tmp_path))
    assert result.returncode == 4, result.stdout + result.stderr  # a usage error: the run could not start
    assert "CI=true: the PostgreSQL run cannot start PostgreSQL" in result.stderr


ONE_DATABASE_TESTS = '''
import pytest

def test_anywhere():
    pass

@pytest.mark.postgres_only
def test_on_postgresql_only():
    pass

@pytest.mark.sqlite_only
def test_on_sqlite_only():
    pass
'''


def test_tests_of_the_other_database_are_deselected_not_skipped_even_under_ci(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    postgres_only: PostgreSQL run only\n"
                                         "    sqlite_only: SQLite run only\n")
    result = run_pytest(tmp_path, {"test_marked.py": ONE_DATABASE_TESTS}, "-p", "tests.plugins.database",
                        CI="true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 1 deselected" in result.stdout
    assert "PASSED test_marked.py::test_on_sqlite_only" in result.stdout
    assert "test_on_postgresql_only" not in result.stdout
