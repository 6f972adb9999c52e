"""Exports of raw records as CSV or JSON lines, streamed (docs/backup.md, "Export").

Each app declares what it can export in its ``exports.py``: ``EXPORTS``, a list of ``ExportStream``
(collected with ``app_modules("exports")``, like the schedule and retention modules), so this module
names no app. A stream lists its columns explicitly: nothing leaves that is not listed, which keeps
secrets (token hashes, channel credentials) out of every export.

Rows are read with ``QuerySet.iterator(chunk_size=...)`` (a server-side cursor on PostgreSQL) and
written one at a time, so memory stays flat however many rows a window holds.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from analytics.platform.collectors import app_modules
from analytics.platform.tenancy import Organization
from analytics.platform.windows import Window, isoformat

logger = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl")
# Rows fetched from the database at a time: a few MB at most, whatever the window holds.
CHUNK_SIZE = 2000


class TextSink(Protocol):
    def write(self, text: str, /) -> Any: ...


@dataclass(frozen=True)
class ExportStream:
    """One exportable kind of record.

    ``rows(window, org)`` yields one tuple per record in ``columns`` order, oldest first; ``org`` None
    means every org. Build it on ``.values_list(...).iterator(chunk_size=CHUNK_SIZE)``.
    """

    name: str
    description: str
    columns: tuple[str, ...]
    rows: Callable[[Window, Organization | None], Iterable[tuple]]


class ExportError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def export_streams() -> dict[str, ExportStream]:
    """Every app's export streams by name, in INSTALLED_APPS order."""
    streams: dict[str, ExportStream] = {}
    for module in app_modules("exports"):
        for stream in getattr(module, "EXPORTS", []):
            if stream.name in streams:
                raise ImproperlyConfigured(f"two apps export {stream.name!r}")
            streams[stream.name] = stream
    return streams


def export_rows(what: str, export_format: str, window: Window, org_slug: str | None, sink: TextSink) -> int:
    """Write the ``what`` records of ``window`` (of one org, or all) to ``sink``; returns the rows written."""
    streams = export_streams()
    if what not in streams:
        raise ExportError("what", f"{what!r} is not one of {', '.join(sorted(streams))}.")
    if export_format not in FORMATS:
        raise ExportError("format", f"{export_format!r} is not one of {', '.join(FORMATS)}.")
    org = None
    if org_slug:
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise ExportError("org", f"no org with the slug {org_slug!r}.")
    stream = streams[what]
    started = time.monotonic()
    writer = _csv_writer(sink, stream.columns) if export_format == "csv" else _jsonl_writer(sink, stream.columns)
    count = 0
    for row in stream.rows(window, org):
        writer(row)
        count += 1
    logger.info("export: %d %s as %s (%s to %s, org %s) in %.2fs", count, what, export_format,
                isoformat(window.start), isoformat(window.end), org_slug or "all", time.monotonic() - started)
    return count


def _csv_writer(sink: TextSink, columns: tuple[str, ...]) -> Callable[[tuple], None]:
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(columns)
    return lambda row: writer.writerow([_csv_value(value) for value in row])


def _jsonl_writer(sink: TextSink, columns: tuple[str, ...]) -> Callable[[tuple], None]:
    def write(row: tuple) -> None:
        record = {column: _json_value(value) for column, value in zip(columns, row, strict=True)}
        sink.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
    return write


def _csv_value(value):
    """CSV cells: times in UTC with Z, booleans as true/false, null as empty, objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _json_value(value):
    return isoformat(value) if isinstance(value, datetime) else value
