"""Request tracking: buffered, flushed in bulk by count or time, never failing a request."""

import logging
import time

import pytest
from django.utils import timezone

from analytics.models import MetricEvent, MetricSeries
from analytics.services.metrics_ingest import MetricItem
from analytics.tracking import MetricBuffer, buffer, track_contract_execution, track_orchestration

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for_events(name, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = MetricEvent.objects.filter(series__name=name).count()
        if found >= count:
            return found
        time.sleep(0.05)
    return MetricEvent.objects.filter(series__name=name).count()


@pytest.fixture
def tracking(settings):
    settings.ANALYTICS_REQUEST_TRACKING = True
    buffer.flush()
    yield
    buffer.flush()


def test_a_single_request_is_written_by_the_background_flusher(tracking, personas, settings):
    # No explicit flush: the buffer's thread writes it after the flush interval (how soon is bench's business).
    assert personas.member.get("metrics").status_code == 200
    assert wait_for_events("api.response_time", 1, timeout=30) == 1
    series = MetricSeries.objects.get(name="api.response_time")
    assert series.org == personas.org and series.metric_type == "timer" and series.unit == "ms"
    assert series.tags == {"endpoint": "metric-list", "method": "GET", "status": "200"}


def test_the_request_path_does_not_write(tracking, personas, monkeypatch):
    # The request only appends to the buffer; the writing is the flusher thread's, kept from starting here.
    quiet = MetricBuffer()
    monkeypatch.setattr(quiet, "_ensure_thread", lambda: None)
    monkeypatch.setattr("analytics.tracking.buffer", quiet)
    personas.member.get("metrics")
    assert MetricEvent.objects.filter(series__name="api.response_time").count() == 0
    assert quiet.flush() == 1
    assert MetricEvent.objects.filter(series__name="api.response_time").count() == 1


def test_staff_and_anonymous_requests_go_to_the_platform_scope(tracking, personas):
    personas.staff.get("metrics")
    personas.anonymous.get("metrics")
    buffer.flush()
    statuses = sorted((s.org_id, s.tags["status"]) for s in MetricSeries.objects.filter(name="api.response_time"))
    assert statuses == [(None, "200"), (None, "401")]
    # Visible to staff, not to an org's token.
    assert personas.staff.get("metrics/api.response_time/statistics").json()["count"] >= 2
    assert personas.member.get("metrics/api.response_time/statistics").json()["count"] == 0


def test_a_full_buffer_flushes_before_the_interval(settings, personas):
    settings.ANALYTICS_TRACKING_FLUSH_SECONDS = 60
    settings.ANALYTICS_TRACKING_FLUSH_EVENTS = 3
    own = MetricBuffer()
    for value in (1.0, 2.0, 3.0):
        own.add(personas.org.pk, MetricItem("burst", value, timestamp=timezone.now()))
    assert wait_for_events("burst", 3, timeout=3) == 3


def test_a_failed_flush_is_logged_not_raised(personas, caplog):
    own = MetricBuffer()
    own.add(personas.org.pk, MetricItem("broken", None, timestamp=timezone.now()))  # NOT NULL violation
    with caplog.at_level(logging.ERROR, logger="analytics.tracking"):
        assert own.flush() == 0
    assert "could not write 1 buffered events" in caplog.text
    assert not MetricEvent.objects.exists()


def test_tracking_can_be_turned_off(personas, settings):
    settings.ANALYTICS_REQUEST_TRACKING = False
    personas.member.get("metrics")
    assert buffer.flush() == 0


def test_performance_summary_from_tracked_requests(tracking, personas):
    for _ in range(3):
        personas.member.post("metrics/record", {"metric_name": "m", "value": 1})
    personas.member.post("metrics/record", {"metric_name": "m"})  # 400
    personas.member.get("metrics/m/statistics")
    buffer.flush()
    body = personas.member.get("performance").json()
    rows = {(row["endpoint"], row["method"]): row for row in body["results"]}
    record = rows[("metric-record", "POST")]
    assert record["requests"] == 4 and record["error_rate"] == 0.0  # a 400 is the caller's error, not ours
    assert record["p50"] > 0 and record["p99"] >= record["p95"] >= record["p50"]
    assert rows[("metric-statistics", "GET")]["requests"] == 1
    assert {"start", "end"} <= set(body)


def test_contract_and_orchestration_helpers(personas):
    track_contract_execution("agent-7", 420.0, True, org=personas.org, contract_id="c-1")
    track_contract_execution("agent-7", 420.0, True, org=personas.org, contract_id="c-1")  # a retry
    track_orchestration("fan_out", 4, 1500.0, org=personas.org)
    contract = MetricSeries.objects.get(name="contract.execution_time")
    assert contract.tags == {"agent_id": "agent-7", "success": "true"}
    assert MetricEvent.objects.filter(series=contract).count() == 1
    orchestration = MetricSeries.objects.get(name="orchestration.duration")
    assert orchestration.tags == {"pattern": "fan_out", "agent_count": "4", "success": "true"}
