"""Backups of the whole database, and restoring one (docs/backup.md).

A plain ``cp`` of a live SQLite file in WAL mode can miss the writes still in its ``-wal`` file, or copy
a torn page; so SQLite is copied with its online backup API (``sqlite3.Connection.backup``), which
takes a consistent snapshot while other processes go on writing. PostgreSQL is dumped with
``pg_dump --format=custom`` (a consistent snapshot too) and restored with ``pg_restore`` in one
transaction. The credentials go to the PostgreSQL tools through their environment (``PGPASSWORD``), never
on a command line that ``ps`` shows, and never in a message.

A backup file holds everything, token hashes and channel secrets included: it is written mode 0600.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

# Scheduled backups are named toolweaver-<UTC time>.<kind>; pruning touches only files named so.
BACKUP_PREFIX = "toolweaver-"
SUFFIX_BY_VENDOR = {"sqlite": ".sqlite3", "postgresql": ".pgdump"}
SQLITE_HEADER = b"SQLite format 3\x00"
PG_DUMP_HEADER = b"PGDMP"  # the first bytes of pg_dump's custom format

# Connection options of a DATABASES entry that libpq also reads from the environment.
LIBPQ_ENVIRONMENT = {
    "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL", "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS",
    "application_name": "PGAPPNAME", "target_session_attrs": "PGTARGETSESSIONATTRS", "service": "PGSERVICE",
    "passfile": "PGPASSFILE", "gssencmode": "PGGSSENCMODE", "channel_binding": "PGCHANNELBINDING",
}


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is one line for an operator, free of secrets."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    vendor: str
    size_bytes: int
    seconds: float


# --- Backup -------------------------------------------------------------------------------------------------


def backup(path: str | Path | None = None, *, using: str = "default") -> BackupResult:
    """Write a consistent backup of the database to ``path`` (a file, or a directory to put a dated one in).

    Default: a dated file in ``BACKUP_DIR``. An existing file is never overwritten. The file appears
    whole or not at all (written beside, then renamed).
    """
    started = time.monotonic()
    connection = connections[using]
    vendor = _supported_vendor(connection.vendor)
    target = _backup_target(path, vendor)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if vendor == "sqlite":
            _sqlite_backup(_sqlite_file(connection.settings_dict), partial, _sqlite_timeout(connection.settings_dict))
        else:
            _pg_dump(connection.settings_dict, partial)
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    result = BackupResult(target, vendor, target.stat().st_size, round(time.monotonic() - started, 3))
    logger.info("backup: %s database to %s, %d bytes in %.2fs", vendor, target, result.size_bytes, result.seconds)
    return result


def _backup_target(path: str | Path | None, vendor: str) -> Path:
    if path is None or Path(path).is_dir():
        directory = Path(path) if path is not None else Path(settings.BACKUP_DIR)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return directory / dated_backup_name(vendor)
    target = Path(path).expanduser()
    if target.exists():
        raise BackupError(f"{target} already exists; a backup never overwrites a file")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory")
    return target


def dated_backup_name(vendor: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{BACKUP_PREFIX}{moment:%Y%m%dT%H%M%S%fZ}{SUFFIX_BY_VENDOR[vendor]}"


def _sqlite_backup(database: Path, target: Path, timeout: float) -> None:
    source = sqlite3.connect(database, timeout=timeout)
    try:
        copy = sqlite3.connect(target)
        try:
            # All pages in one step: one read transaction, so one snapshot, while writers go on (WAL).
            source.backup(copy, pages=-1)
            # A self-contained file: no -wal beside it when it is opened later.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
    except sqlite3.Error as error:
        raise BackupError(f"SQLite backup of {database} failed: {error}") from None
    finally:
        source.close()


def _pg_dump(settings_dict: dict, target: Path) -> None:
    _run_pg_tool("pg_dump", ["--format=custom", "--compress=6", f"--file={target}",
                             f"--dbname={settings_dict['NAME']}"], settings_dict)


# --- Restore ------------------------------------------------------------------------------------------------


def restore(path: str | Path, *, using: str = "default") -> BackupResult:
    """Replace the whole database with the backup at ``path``.

    The file is checked first (it exists, is a backup of this kind of database, and reads whole), so a
    wrong or damaged file leaves the database as it was. The copy itself is one transaction: SQLite's
    backup API writes the pages in one write transaction, ``pg_restore --single-transaction`` drops and
    recreates the tables in one. Stop the web server, workers and beat first (docs/backup.md).
    """
    started = time.monotonic()
    source = Path(path).expanduser()
    connection = connections[using]
    vendor = _supported_vendor(connection.vendor)
    check_backup_file(source, vendor)
    connection.close()  # the restore replaces what this connection would have cached or locked
    if vendor == "sqlite":
        _sqlite_restore(source, _sqlite_file(connection.settings_dict), _sqlite_timeout(connection.settings_dict))
    else:
        _run_pg_tool("pg_restore", ["--clean", "--if-exists", "--no-owner", "--no-privileges",
                                    "--single-transaction", "--exit-on-error",
                                    f"--dbname={connection.settings_dict['NAME']}", str(source)],
                     connection.settings_dict)
    result = BackupResult(source, vendor, source.stat().st_size, round(time.monotonic() - started, 3))
    logger.info("restore: %s database from %s, %d bytes in %.2fs", vendor, source, result.size_bytes, result.seconds)
    return result


def check_backup_file(path: Path, vendor: str) -> None:
    """Raise BackupError unless ``path`` is a readable, whole backup of a ``vendor`` database of this project."""
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    kind = "sqlite" if header == SQLITE_HEADER else "postgresql" if header.startswith(PG_DUMP_HEADER) else None
    if kind is None:
        raise BackupError(f"{path} is not a backup (neither a SQLite database nor a pg_dump custom-format file)")
    if kind != vendor:
        raise BackupError(f"{path} is a {kind} backup; this database is {vendor}")
    if vendor == "sqlite":
        _check_sqlite_backup(path)
    else:
        _run_pg_tool("pg_restore", ["--list", str(path)], None, what=f"{path} cannot be read")


def _check_sqlite_backup(path: Path) -> None:
    try:
        database = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in database.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise BackupError(f"{path} is damaged: {problems[0]}")
            tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            database.close()
    except sqlite3.Error as error:
        raise BackupError(f"{path} is damaged: {error}") from None
    if "django_migrations" not in tables:
        raise BackupError(f"{path} is a SQLite database, but not a backup of this project (no django_migrations)")


def _sqlite_restore(source: Path, database: Path, timeout: float) -> None:
    try:
        backup_file = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            live = sqlite3.connect(database, timeout=timeout)
            try:
                # One write transaction on the live database; it keeps its own journal mode (WAL).
                backup_file.backup(live, pages=-1)
            finally:
                live.close()
        finally:
            backup_file.close()
    except sqlite3.Error as error:
        raise BackupError(f"SQLite restore into {database} failed: {error}") from None


# --- Kept count and the daily job --------------------------------------------------------------------------


def prune_backups(directory: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` dated backups in ``directory``; returns those deleted.

    Only files named like scheduled backups are considered; an operator's other files stay.
    """
    if keep < 1:
        raise BackupError(f"keep must be at least 1, got {keep}")
    pattern = re.compile(re.escape(BACKUP_PREFIX) + r"\d{8}T\d{12}Z(" +
                         "|".join(re.escape(suffix) for suffix in SUFFIX_BY_VENDOR.values()) + ")$")
    dated = sorted(path for path in Path(directory).iterdir() if pattern.match(path.name) and path.is_file())
    doomed = dated[:-keep]
    for path in doomed:
        path.unlink()
    return doomed


def scheduled_backup() -> dict:
    """The daily job: a dated backup in BACKUP_DIR, then only the newest BACKUP_KEEP kept."""
    result = backup()
    removed = prune_backups(settings.BACKUP_DIR, settings.BACKUP_KEEP)
    logger.info("scheduled backup: %s written, %d old backups removed (keeping %d)",
                result.path.name, len(removed), settings.BACKUP_KEEP)
    return {"path": str(result.path), "bytes": result.size_bytes, "seconds": result.seconds,
            "removed": [path.name for path in removed]}


# --- Helpers ----------------------------------------------------------------------------------------------------


def _supported_vendor(vendor: str) -> str:
    if vendor not in SUFFIX_BY_VENDOR:
        raise BackupError(f"backups of {vendor} databases are not supported (SQLite and PostgreSQL are)")
    return vendor


def _sqlite_file(settings_dict: dict) -> Path:
    name = str(settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file::memory:") or "mode=memory" in name:
        raise BackupError("the database is in memory; there is no file to back up or restore")
    return Path(name)


def _sqlite_timeout(settings_dict: dict) -> float:
    """How long to wait for another process's write lock: the same as the Django connection waits."""
    return float((settings_dict.get("OPTIONS") or {}).get("timeout", 30))


def pg_tool(name: str) -> str:
    """The path of a PostgreSQL client tool: on PATH, else the newest in /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found

    def version(candidate: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", Path(candidate).parent.parent.name))

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    if not candidates:
        raise BackupError(f"{name} not found (on PATH or in /usr/lib/postgresql/*/bin): install postgresql-client")
    return candidates[-1]


def pg_environment(settings_dict: dict) -> dict[str, str]:
    """The libpq environment that points the PostgreSQL tools at this database, password included."""
    env = dict(os.environ)
    for key, variable in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD")):
        if settings_dict.get(key):
            env[variable] = str(settings_dict[key])
    for option, value in (settings_dict.get("OPTIONS") or {}).items():
        if option == "host" and not settings_dict.get("HOST"):
            env["PGHOST"] = str(value)
        elif option in LIBPQ_ENVIRONMENT:
            env[LIBPQ_ENVIRONMENT[option]] = str(value)
    return env


def _run_pg_tool(name: str, arguments: list[str], settings_dict: dict | None, what: str | None = None) -> None:
    env = pg_environment(settings_dict) if settings_dict is not None else dict(os.environ)
    completed = subprocess.run([pg_tool(name), *arguments], env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        detail = _first_error_line(completed.stderr)
        password = (settings_dict or {}).get("PASSWORD")
        if password:
            detail = detail.replace(str(password), "***")
        raise BackupError(f"{what or name + ' failed'}: {detail}")


def _first_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no message"])[0]
