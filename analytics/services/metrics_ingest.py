"""Recording metric events: validate a batch whole, then write it in bulk.

    MetricItem                                                    (one event; its annotations are the contract)
    ingest_metric_items(org, items) -> IngestResult               (validated items, one transaction)
    record_metric(name, value, *, org=PLATFORM, metric_type="gauge", unit="", tags=None, source="",
                  timestamp=None, event_id=None) -> IngestResult   (one event, from Python)

``org`` is where the events are written: an Organization (or its Scope), or PLATFORM
for rows with no org (requests of staff and anonymous callers). ALL_ORGS cannot be written to.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, ClassVar

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from pydantic import ConfigDict, Field
from pydantic_core import PydanticCustomError

from analytics.models import MetricEvent, MetricEventKey, MetricSeries, MetricSeriesTag, MetricType, Organization
from analytics.models.metrics import canonical_tags
from analytics.platform.contracts import (
    EventId,
    EventTime,
    Measurement,
    Name,
    Printable,
    ResponseContract,
    Tags,
    validate_one,
)
from analytics.platform.scope import PLATFORM, Scope, ScopeLike, as_scope
from analytics.services.bulk_insert import insert_rows
from analytics.services.rollups import mark_dirty

logger = logging.getLogger(__name__)

INSERT_CHUNK = 5000
EVENT_COLUMNS = ["series_id", "org_id", "timestamp", "value", "event_id"]
EVENT_TYPES = ["int8", "int8", "timestamptz", "float8", "text"]  # their PostgreSQL types, for a binary COPY


# A counter counts up and a timer measures a duration: neither can be negative.
NON_NEGATIVE_TYPES = (MetricType.COUNTER, MetricType.TIMER)


@dataclass(frozen=True)
class MetricItem:
    """One metric event: the API's item (``POST metrics/record`` and ``metrics/batch``) and the service's.

    The annotations are the contract: ``validate_items(MetricItem, ...)`` checks them (API and client);
    code that builds an item itself is trusted and skips that.
    """

    __pydantic_config__ = ConfigDict(json_schema_extra={
        "description": "One metric event. A counter or timer value must be at least 0.",
        "if": {"properties": {"metric_type": {"enum": list(NON_NEGATIVE_TYPES)}}, "required": ["metric_type"]},
        "then": {"properties": {"value": {"minimum": 0}}},
    })

    metric_name: Annotated[str, Name(200, description="Printable; no surrounding spaces.")]
    value: Measurement
    metric_type: MetricType = MetricType.GAUGE
    unit: Annotated[str, Printable(32)] = ""
    source: Annotated[str, Printable(100)] = ""
    tags: Tags = field(default_factory=dict)
    timestamp: EventTime = field(default_factory=timezone.now)
    event_id: EventId | None = None

    def __post_init__(self):
        if self.metric_type in NON_NEGATIVE_TYPES and isinstance(self.value, int | float) and self.value < 0:
            raise PydanticCustomError("greater_than_equal", "Must be at least 0.", {"field": "value", "ge": 0})
        # The item's series, (name, type, unit, source, canonical tags): not a field; set once here, since
        # ingest reads it several times for every event.
        object.__setattr__(self, "series_key", (self.metric_name, self.metric_type, self.unit, self.source,
                                                canonical_tags(self.tags)))

    series_key: ClassVar[tuple]  # set per item by __post_init__


class IngestResult(ResponseContract):
    accepted: int = Field(description="Items stored.")
    duplicates: int = Field(description="Items whose event_id the org had already stored (not stored again).")


def _series_for(org: Organization | None, items: list[MetricItem]) -> dict[tuple, MetricSeries]:
    """The series of every item in ``org`` (None: the platform), creating the missing ones and their tag rows."""
    wanted: dict[tuple, MetricItem] = {}  # an item of each series
    earliest: dict[tuple, datetime] = {}
    for item in items:
        key = item.series_key
        moment = earliest.get(key)
        if moment is None:
            wanted[key], earliest[key] = item, item.timestamp
        elif item.timestamp < moment:
            earliest[key] = item.timestamp
    names = {key[0] for key in wanted}

    def existing():
        rows = MetricSeries.objects.filter(org=org, name__in=names).only(
            "id", "name", "metric_type", "unit", "source", "tag_key", "first_seen", "last_seen", "last_value"
        )
        return {(s.name, s.metric_type, s.unit, s.source, s.tag_key): s for s in rows}

    found = existing()
    missing = [key for key in wanted if key not in found]
    if missing:
        MetricSeries.objects.bulk_create(
            [
                MetricSeries(
                    org=org, name=key[0], metric_type=key[1], unit=key[2], source=key[3],
                    tags=wanted[key].tags, tag_key=key[4], first_seen=earliest[key], last_seen=earliest[key],
                )
                for key in missing
            ],
            ignore_conflicts=True,  # another writer may create the same series meanwhile
        )
        found = existing()
        new_series = [found[key] for key in missing]
        MetricSeriesTag.objects.bulk_create(
            [
                MetricSeriesTag(series=series, key=key, value=value)
                for series in new_series
                for key, value in wanted[(series.name, series.metric_type, series.unit, series.source,
                                          series.tag_key)].tags.items()
            ],
            ignore_conflicts=True,
        )
    # first_seen is the series' earliest event (the query planner knows no raw row is older): a late event
    # older than it moves it back.
    for key, moment in earliest.items():
        series = found.get(key)
        if series is not None and moment < series.first_seen:
            MetricSeries.objects.filter(pk=series.pk, first_seen__gt=moment).update(first_seen=moment)
            series.first_seen = moment
    return found


def _stored_event_ids(model, scope: Scope, ids: list[str]) -> set[str]:
    # One array parameter on PostgreSQL: an IN list of 10,000 values costs more to build than to run. Joined
    # from unnest() rather than "event_id = ANY(%s)": PostgreSQL (before 17) may apply an array condition on
    # the second column of the (org, event_id) index as a filter over every row of the org instead of an
    # index lookup, which it did while the column's statistics still said "all NULL" (a deployment whose
    # clients start sending event ids): 13 ms for one id over 100,000 rows, against 0.03 ms joined.
    if connection.vendor == "postgresql":
        in_scope, params = scope.sql("stored.org_id")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT stored.event_id FROM unnest(%s::varchar[]) AS wanted(event_id) "
                           f"JOIN {model._meta.db_table} AS stored ON stored.event_id = wanted.event_id "
                           f"WHERE {in_scope}", [ids, *params])
            return {row[0] for row in cursor.fetchall()}
    stored = set()
    for start in range(0, len(ids), INSERT_CHUNK):
        stored.update(scope.filter(model.objects.filter(event_id__in=ids[start:start + INSERT_CHUNK]))
                      .values_list("event_id", flat=True))
    return stored


def drop_duplicates(model, org: ScopeLike, items: list) -> list:
    """Items whose ``event_id`` the org (or the platform) already stored in ``model`` (one family), or that
    repeat an id earlier in the batch, are dropped. Shared by every ingest family.

    For metric events the ids are *claimed* in ``MetricEventKey`` as they are checked (``_claim_event_ids``):
    call it in the transaction that then stores every item it returns."""
    if model is MetricEvent:
        return _claim_event_ids(as_scope(org), items)
    ids = list({item.event_id for item in items if item.event_id is not None})
    if not ids:
        return items
    stored = _stored_event_ids(model, as_scope(org), ids)
    fresh, seen = [], set()
    for item in items:
        if item.event_id is not None:
            if item.event_id in stored or item.event_id in seen:
                continue
            seen.add(item.event_id)
        fresh.append(item)
    return fresh


def _claim_event_ids(scope: Scope, items: list) -> list:
    """The items whose event id is new for the scope (and those without one); their ids recorded as stored.

    An insert into the key table says which ids are new (``_claim_on_postgresql``: a plain INSERT for a
    large batch of new ids, else ``INSERT ... ON CONFLICT DO NOTHING RETURNING``): race-safe, since a
    concurrent transaction inserting the same id waits for this one's commit and then gets a conflict (or,
    if this one rolls back, the id). The events table (partitioned by day on PostgreSQL) has
    no unique index on event ids, so that ids stay unique across days."""
    firsts: dict[str, int] = {}  # each id's first item, by position in the batch
    for position, item in enumerate(items):
        if item.event_id is not None and item.event_id not in firsts:
            firsts[item.event_id] = position
    if not firsts:
        return items
    if scope.is_all:
        scope.owner()  # raises: all orgs together own no row
    org_key = scope.org_id or 0  # the platform's ids under 0
    # In id order: two batches sharing ids then wait for each other instead of deadlocking on them.
    ordered = sorted(firsts)
    claim = _claim_on_postgresql if connection.vendor == "postgresql" else _claim_on_sqlite
    claimed = claim(org_key, ordered, [items[firsts[event_id]].timestamp for event_id in ordered])
    kept = {firsts[event_id] for event_id in claimed}
    return [item for position, item in enumerate(items) if item.event_id is None or position in kept]


CLAIM = f'INSERT INTO {MetricEventKey._meta.db_table} (org_key, event_id, "timestamp") '


# From this many ids a batch is first claimed by a plain INSERT (see _claim_on_postgresql).
OPTIMISTIC_CLAIM_IDS = 100


def _claim_on_postgresql(org_key: int, ids: list[str], moments: list[datetime]) -> set[str]:
    """The ids claimed, in one statement whatever the batch size: the ids and the times as two JSON arrays.

    A list parameter is adapted by psycopg item by item (an id with its time cost 3 µs), a JSON text is
    written by json.dumps in C and read by the server in a fraction of that. The times go as epoch seconds;
    the key's time, which only retention reads, may be a microsecond off.

    A large batch is first inserted as it is, in a savepoint: ``ON CONFLICT`` checks each row before its
    insert and confirms it after (a third of the claim's cost), while a batch of new ids, the common case,
    needs neither. If any id is already stored (a retried batch) the unique key refuses the whole insert,
    and the batch is claimed again with ``ON CONFLICT DO NOTHING``."""
    params: list[int | str] = [org_key, json.dumps(ids), json.dumps([moment.timestamp() for moment in moments])]
    select = ("SELECT %s, claimed.event_id, to_timestamp(claimed.moment::float8) "
              "FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) "
              "AS claimed(event_id, moment)")
    with connection.cursor() as cursor:
        if len(ids) >= OPTIMISTIC_CLAIM_IDS:
            try:
                with transaction.atomic():
                    cursor.execute(CLAIM + select, params)
                return set(ids)
            except IntegrityError:
                pass
        cursor.execute(CLAIM + select + " ON CONFLICT DO NOTHING RETURNING event_id", params)
        return {row[0] for row in cursor.fetchall()}


def _claim_on_sqlite(org_key: int, ids: list[str], moments: list[datetime]) -> set[str]:
    """The ids claimed: the pairs as one JSON parameter (json_each), the times in the form Django stores them."""
    adapt = connection.ops.adapt_datetimefield_value
    pairs = json.dumps([[event_id, adapt(moment)] for event_id, moment in zip(ids, moments, strict=True)])
    with connection.cursor() as cursor:
        cursor.execute(CLAIM + "SELECT %s, claimed.value ->> 0, claimed.value ->> 1 FROM json_each(%s) AS claimed "
                       "WHERE true ON CONFLICT DO NOTHING RETURNING event_id", [org_key, pairs])
        return {row[0] for row in cursor.fetchall()}


@transaction.atomic
def ingest_metric_items(org: ScopeLike, items: list[MetricItem]) -> IngestResult:
    scope = as_scope(org)
    owner = scope.owner()  # the org of the written rows; None for PLATFORM (refuses ALL_ORGS)
    if not items:
        return IngestResult(accepted=0, duplicates=0)
    fresh = drop_duplicates(MetricEvent, scope, items)
    if fresh:
        series = _series_for(owner, fresh)
        org_id = scope.org_id
        series_ids = [series[item.series_key].id for item in fresh]
        stored = _insert_events([(series_id, org_id, item.timestamp, item.value, item.event_id)
                                 for series_id, item in zip(series_ids, fresh, strict=True)])
        _update_last_seen(series, fresh)
        mark_dirty(zip(series_ids, (item.timestamp for item in fresh), strict=True), timezone.now())
        return IngestResult(accepted=stored, duplicates=len(items) - stored)
    return IngestResult(accepted=0, duplicates=len(items))


def _insert_events(rows: list[tuple]) -> int:
    """Insert the rows (their event ids already claimed by ``drop_duplicates``); returns how many were stored."""
    return insert_rows(MetricEvent._meta.db_table, EVENT_COLUMNS, rows, types=EVENT_TYPES)


LAST_SEEN_CHUNK = 1000  # series per UPDATE: three parameters each, well inside SQLite's limit


def _update_last_seen(series: dict[tuple, MetricSeries], items: list[MetricItem]) -> None:
    latest: dict[tuple, MetricItem] = {}
    for item in items:
        current = latest.get(item.series_key)
        if current is None or item.timestamp >= current.timestamp:
            latest[item.series_key] = item
    changes = []
    for key, item in latest.items():
        row = series[key]
        if row.last_value is None or item.timestamp >= row.last_seen:
            row.last_seen, row.last_value = item.timestamp, item.value
            changes.append((row.id, connection.ops.adapt_datetimefield_value(item.timestamp), item.value))
    # One statement per chunk of series, each row changed only if its stored last event is not newer: a
    # concurrent request that stored newer events first keeps them (the rows read above may be stale).
    table = MetricSeries._meta.db_table
    for start in range(0, len(changes), LAST_SEEN_CHUNK):
        chunk = changes[start:start + LAST_SEEN_CHUNK]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET last_seen = latest.column2, last_value = latest.column3 "
                f"FROM (VALUES {', '.join(['(%s, %s, %s)'] * len(chunk))}) AS latest "
                f"WHERE {table}.id = latest.column1 "
                f"AND ({table}.last_value IS NULL OR {table}.last_seen <= latest.column2)",
                [value for change in chunk for value in change])


def record_metric(name: str, value: float, *, org: ScopeLike = PLATFORM, metric_type: str = "gauge",
                  unit: str = "", tags: dict | None = None, source: str = "", timestamp=None,
                  event_id: str | None = None) -> IngestResult:
    """Record one event from Python code; raises ContractError (a ValueError) naming the bad fields."""
    raw = {"metric_name": name, "value": value, "metric_type": metric_type, "unit": unit, "tags": tags or {},
           "source": source, "event_id": event_id}
    if timestamp is not None:
        raw["timestamp"] = timestamp
    return ingest_metric_items(org, [validate_one(MetricItem, raw)])
