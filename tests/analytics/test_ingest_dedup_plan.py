"""The event-id check of every ingest reads the (org, event_id) index by id on PostgreSQL, also while the
column's statistics are stale — the way a deployment's are when its clients start sending event ids after
months of events without them (autovacuum re-analyses a big table only after 10% of it has changed).

Metric events keep their ids in MetricEventKey (the events table is partitioned by day): their check is one
INSERT ... ON CONFLICT DO NOTHING into it, checked on its (org, event_id) primary key."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import MetricEvent, MetricEventKey, MetricSeries, Organization
from analytics.platform.contracts import validate_one
from analytics.services.metrics_ingest import MetricItem, drop_duplicates

pytestmark = pytest.mark.postgres_only

ROWS = 20_000


def _rows_read(plan: dict) -> float:
    """Rows every node of an EXPLAIN ANALYZE plan produced or read and threw away, over all its loops."""
    own = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get("Actual Loops", 1)
    return own + sum(_rows_read(child) for child in plan.get("Plans", []))


def test_the_event_id_check_reads_the_index_by_id_while_statistics_say_every_id_is_null(db):
    org = Organization.objects.create(slug="acme")
    series = MetricSeries.objects.create(org=org, name="latency", metric_type="gauge")
    insert = ("INSERT INTO analytics_metricevent (series_id, org_id, timestamp, value, event_id) "
              "SELECT %s, %s, now() - n * interval '1 second', n, {} FROM generate_series(1, %s) AS n")
    with connection.cursor() as cursor:
        cursor.execute(insert.format("NULL"), [series.id, org.id, ROWS])
        cursor.execute("ANALYZE analytics_metricevent")  # the statistics now say: event_id is always NULL
        cursor.execute(insert.format("'e-' || n"), [series.id, org.id, ROWS])
        # Their ids, as ingest records them.
        cursor.execute(f"INSERT INTO {MetricEventKey._meta.db_table} (org_key, event_id, timestamp) "
                       "SELECT %s, 'e-' || n, now() - n * interval '1 second' FROM generate_series(1, %s) AS n",
                       [org.id, ROWS])
    assert MetricEvent.objects.filter(org=org, event_id__isnull=False).count() == ROWS

    items = [validate_one(MetricItem, {"metric_name": "latency", "value": 1, "event_id": event_id})
             for event_id in ("e-5", "e-new")]
    with CaptureQueriesContext(connection) as queries:
        fresh = drop_duplicates(MetricEvent, org, items)
    assert [item.event_id for item in fresh] == ["e-new"]

    (lookup,) = [query["sql"] for query in queries.captured_queries if "event_id" in query["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + lookup)  # both ids are taken now: two conflicts
        (explained,) = cursor.fetchone()  # psycopg decodes the json column
    plan = explained[0]["Plan"]
    # Two ids looked up: a handful of rows, not every row of the org that has an id.
    assert _rows_read(plan) <= 10, json.dumps(plan, indent=1)
    assert (plan["Operation"], plan.get("Conflict Resolution"), plan["Relation Name"]) == (
        "Insert", "NOTHING", MetricEventKey._meta.db_table)
