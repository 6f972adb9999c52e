"""POST batch-track (seed 003): computes the token's org's period analytics; bad input is a 400 naming the field."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.models import PlatformMetrics, UserAnalytics
from analytics.services.activity import Session, record_activity

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def long_retention(settings):
    """DAY's events are older than the default 90 days' retention, which bounds the ranges computed."""
    settings.ANALYTICS_DB_RETENTION_DAYS = 3660


def session(user_id: str, moment: datetime) -> Session:
    return Session(type="session", user_id=user_id, active_seconds=60.0, timestamp=moment)


@pytest.fixture
def sessions(personas):
    record_activity(personas.org, [session("u1", DAY + timedelta(hours=1)), session("u2", DAY + timedelta(hours=30))])
    record_activity(personas.other_org, [session("x1", DAY + timedelta(hours=1))])


def test_a_range_of_days_is_computed_for_the_tokens_org(personas, sessions):
    response = personas.member.post("batch-track", {"period_type": "day", "start": "2026-03-10T00:00:00Z",
                                                    "end": "2026-03-12"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body.pop("seconds") >= 0
    assert body == {"period_type": "day", "start": "2026-03-10T00:00:00Z", "end": "2026-03-12T00:00:00Z",
                    "periods": 2, "users": 2, "agents": 0, "platform_rows": 2}
    assert list(UserAnalytics.objects.order_by("period_start").values_list("org__slug", "user_id", "period_start")) == [
        ("acme", "u1", DAY), ("acme", "u2", DAY + timedelta(days=1))]
    assert PlatformMetrics.objects.filter(org=personas.other_org).count() == 0


def test_an_empty_body_computes_the_current_day(personas, sessions):
    response = personas.member.post("batch-track/")
    assert response.status_code == 200, response.json()
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    assert response.json()["start"] == today.isoformat().replace("+00:00", "Z")
    assert response.json()["periods"] == 1
    assert PlatformMetrics.objects.get(org=personas.org).period_start == today


@pytest.mark.parametrize(("body", "field"), [
    ({"period_type": "year"}, "period_type"),
    ({"start": "yesterday"}, "start"),
    ({"start": 20260310}, "start"),
    ({"end": "2026-03-10"}, "start"),
    ({"start": "2026-03-10", "end": "2026-03-09"}, "end"),
    ({"period_type": "hour", "start": "2026-01-01", "end": "2026-03-01"}, "start"),
    ({"start": "2000-01-01", "end": "2000-01-02"}, "start"),  # older than the retention period
])
def test_bad_input_is_a_400_naming_the_field(personas, body, field):
    response = personas.member.post("batch-track", body)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not PlatformMetrics.objects.exists()


def test_writing_needs_a_writing_token(personas):
    assert personas.anonymous.post("batch-track", {}).status_code == 401
    assert personas.reader.post("batch-track", {}).status_code == 403


def test_staff_name_the_org(personas, sessions):
    response = personas.staff.post("batch-track", {"start": "2026-03-10", "end": "2026-03-11"})
    assert response.status_code == 400 and list(response.json()["errors"]) == ["org"]
    response = personas.staff.post("batch-track?org=globex", {"start": "2026-03-10", "end": "2026-03-11"})
    assert response.status_code == 200 and response.json()["users"] == 1
    assert list(UserAnalytics.objects.values_list("org__slug", "user_id")) == [("globex", "x1")]


def test_a_range_past_the_current_period_is_a_400_naming_end(personas):
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    body = {"start": today.isoformat(), "end": (today + timedelta(days=3)).isoformat()}
    response = personas.member.post("batch-track", body)
    assert response.status_code == 400
    assert response.json()["errors"] == {"end": ["Is after the end of the current period."]}
