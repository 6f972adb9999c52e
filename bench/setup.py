"""What the per-database benchmarks share: a throw-away Django on SQLite or PostgreSQL, and their doc rows."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.report import BENCHMARKS_DOC, replace_section

DATABASES = ("SQLite", "PostgreSQL")


def setup_django(data_dir: str, database_url: str | None) -> None:
    os.environ.update(TOOLWEAVER_DATA_DIR=data_dir, ANALYTICS_DB_PATH=str(Path(data_dir) / "bench.db"),
                      DJANGO_DEBUG="false", DJANGO_SECRET_KEY="bench-" + "k" * 40, ANALYTICS_LOG_LEVEL="WARNING",
                      ANALYTICS_REQUEST_TRACKING="false", DJANGO_SECURE_SSL="false",
                      DJANGO_SETTINGS_MODULE="toolweaver_site.settings")
    os.environ.pop("ANALYTICS_DB_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from toolweaver_site.heap import freeze_loaded_heap

    freeze_loaded_heap()  # as the WSGI and Celery worker processes do at start


@contextmanager
def bench_database(postgres: bool, prefix: str) -> Iterator[str]:
    """A migrated database in a fresh data directory (a PostgreSQL started for the run, or SQLite); yields
    its label as the docs' tables name it. Everything is thrown away after."""
    data_dir = tempfile.mkdtemp(prefix=prefix)
    server = None
    try:
        database_url = None
        if postgres:
            from tests.servers import start_postgres

            server = start_postgres({"work_mem": "64MB"})
            database_url = server.url("postgres")
        setup_django(data_dir, database_url)
        yield "PostgreSQL" if postgres else "SQLite"
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def database_section(heading: str, intro: list[str], columns: list[str], rows: dict[str, str]) -> str:
    """A section: the heading, its text, the machine, and a table with one row per database."""
    return "\n".join([
        heading, "", *intro,
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.", "",
        "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
        *[rows[name] for name in sorted(rows)], "",
    ])


def existing_rows(heading: str, text: str) -> dict[str, str]:
    """The rows of one database each in the section ``heading`` of the doc's text."""
    if heading not in text:
        return {}
    body = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return {line.split("|")[1].strip(): line for line in body.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip() in DATABASES}


def write_database_row(heading: str, section: Callable[[dict[str, str]], str], database: str, row: str) -> Path:
    """Replace only this benchmark's section, and in it only this database's row."""
    text = BENCHMARKS_DOC.read_text() if BENCHMARKS_DOC.exists() else ""
    return replace_section(heading, section({**existing_rows(heading, text), database: row}))


def bench_arguments(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes; each adds its own sizes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--postgres", action="store_true", help="Start a throw-away PostgreSQL and use it.")
    parser.add_argument("--no-write", action="store_true", help="Print the result, leave docs/ alone.")
    return parser


def publish(heading: str, section: Callable[[dict[str, str]], str], database: str, row: str, *, write: bool) -> None:
    """Print the benchmark's section with this run's row and, unless told not to, record it in docs/."""
    print(section({database: row}))
    if write:
        print(f"written to {write_database_row(heading, section, database, row)}")
