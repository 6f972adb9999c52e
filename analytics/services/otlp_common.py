"""What the OTLP intake of metrics and of traces shares (docs/otlp.md).

OTLP attributes (``KeyValue`` with an ``AnyValue``) become the platform's tags: string keys and values,
printable, bounded as the API bounds tags. A resource's attributes and a data point's (or span's) attributes
are merged, the point's winning; past ``MAX_TAGS`` the rest are dropped and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from analytics.platform.contracts import MAX_TAGS

TAG_KEY_MAX, TAG_VALUE_MAX = 64, 256
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONTROL = {code: None for code in (*range(0x00, 0x20), *range(0x7F, 0xA0))}


@dataclass(frozen=True)
class IntakeResult:
    """What one export request did: stored items, and rejected ones with the first reason (OTLP's
    ``partial_success``: ``rejected_data_points`` / ``rejected_spans`` and ``error_message``)."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    reason: str = ""
    dropped_attributes: int = 0
    other_spans: int = 0  # traces: spans that are not tool executions (counted, nothing stored)


def printable(text: str, limit: int) -> str:
    """``text`` without control characters, cut to ``limit`` characters."""
    return text.translate(_CONTROL)[:limit]


def any_value_text(value) -> str:
    """An ``AnyValue`` as tag text: strings as they are, numbers and booleans as JSON writes them,
    arrays and maps as compact JSON, bytes as hex."""
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "array_value":
        return json.dumps([any_value_text(item) for item in value.array_value.values], separators=(",", ":"))
    return json.dumps({item.key: any_value_text(item.value) for item in value.kvlist_value.values},
                      separators=(",", ":"))


def attribute_map(attributes) -> dict[str, str]:
    """OTLP ``KeyValue`` list → {key: text}, keys and values printable and bounded (empty keys skipped)."""
    found: dict[str, str] = {}
    for attribute in attributes:
        key = printable(attribute.key, TAG_KEY_MAX)
        if key:
            found[key] = printable(any_value_text(attribute.value), TAG_VALUE_MAX)
    return found


def merged_tags(*layers: dict[str, str]) -> tuple[dict[str, str], int]:
    """Tags from attribute layers (resource first, the point's last: later layers win), at most MAX_TAGS;
    the second value counts the attributes dropped past the cap (in key order, so the choice is stable)."""
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update(layer)
    if len(merged) <= MAX_TAGS:
        return merged, 0
    kept = dict(sorted(merged.items())[:MAX_TAGS])
    return kept, len(merged) - MAX_TAGS


def nanos_to_datetime(nanos: int) -> datetime | None:
    """OTLP's ``time_unix_nano`` as an aware UTC datetime (microseconds); None for 0 (unset)."""
    if not nanos:
        return None
    return EPOCH + timedelta(microseconds=nanos // 1000)
