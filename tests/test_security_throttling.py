"""Rate limits per API token: over ``API_THROTTLE_RATE``, HTTP 429 ``{"detail": ...}`` with ``Retry-After``
(docs/security.md, "Rate limits"; analytics/platform/throttling.py).

The tests set a low rate with ``override_settings``; the suite otherwise runs at the default (6000/min), and
every test starts with fresh counters (tests/conftest.py). One test keeps the counters in a real Redis, as
several gunicorn workers would with ``CACHE_URL``.
"""

from __future__ import annotations

import time

import pytest
import redis
from django.core.cache import caches
from django.test import override_settings

from analytics.platform.tenancy import ApiToken
from analytics.platform.throttling import parse_rate
from tests.conftest import token_client
from tests.servers import find_binary, missing_server, start_redis
from tests.test_settings import run_manage

ME = "/api/v1/analytics/me"
THREE_A_MINUTE = override_settings(API_THROTTLE_RATE="3/min")


def _throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["detail"].startswith("Request was throttled.")
    assert 1 <= int(response["Retry-After"]) <= 60


@THREE_A_MINUTE
def test_a_token_over_its_budget_gets_429_with_retry_after(personas):
    member = personas.member
    assert [member.get("me").status_code for _ in range(3)] == [200, 200, 200]
    _throttled(member.get("me"))
    _throttled(member.post("metrics/record", {"metric_name": "m", "value": 1}))  # writes spend the same budget


@THREE_A_MINUTE
def test_each_token_and_each_staff_user_has_a_budget_of_its_own(personas):
    for _ in range(3):
        personas.member.get("me")
    _throttled(personas.member.get("me"))
    assert personas.reader.get("me").status_code == 200  # another token of the same org
    assert personas.outsider.get("me").status_code == 200
    assert [personas.staff.get("alerts/rules").status_code for _ in range(3)] == [200, 200, 200]
    _throttled(personas.staff.get("alerts/rules"))


@THREE_A_MINUTE
def test_a_new_token_of_the_same_org_starts_afresh(personas):
    for _ in range(4):
        personas.member.get("me")
    _, raw = ApiToken.issue(personas.org, name="fresh")
    assert token_client(raw).get(ME).status_code == 200


@THREE_A_MINUTE
def test_the_otlp_receiver_is_throttled_too(personas):
    client = personas.member.client
    for _ in range(3):
        client.post("/otlp/v1/metrics", b"", content_type="application/x-protobuf")
    response = client.post("/otlp/v1/metrics", b"", content_type="application/x-protobuf")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1


@override_settings(API_THROTTLE_RATE="2/s")
def test_the_budget_comes_back_in_the_next_window(personas):
    member = personas.member
    start = time.time()
    while time.time() % 1 > 0.5:  # begin early in a second, so that three requests share its window
        time.sleep(0.05)
    assert [member.get("me").status_code for _ in range(2)] == [200, 200]
    third = member.get("me")
    _throttled(third)
    assert third["Retry-After"] == "1"
    time.sleep(int(third["Retry-After"]))
    assert member.get("me").status_code == 200
    assert time.time() - start < 3


@override_settings(API_THROTTLE_RATE="off")
def test_off_turns_the_limit_off(personas):
    assert {personas.member.get("me").status_code for _ in range(20)} == {200}


def test_the_default_suits_an_ingest_program():
    from django.conf import settings

    assert parse_rate(settings.API_THROTTLE_RATE) == (6000, 60)


@pytest.mark.parametrize(("rate", "parsed"), [("6000/min", (6000, 60)), ("10/s", (10, 1)), ("5/hour", (5, 3600)),
                                              ("100/day", (100, 86400)), ("OFF", None)])
def test_rates_are_read_as_documented(rate, parsed):
    assert parse_rate(rate) == parsed


def test_a_bad_rate_stops_start_up_with_one_line_naming_the_variable(tmp_path):
    result = run_manage(tmp_path, "check", API_THROTTLE_RATE="lots")
    assert result.returncode != 0
    assert "API_THROTTLE_RATE" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def redis_cache():
    if not find_binary("redis-server"):
        missing_server("redis-server is not installed (apt-get install redis-server)")
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.servers
def test_with_a_redis_cache_the_count_is_shared_by_every_worker(personas, redis_cache):
    """Each gunicorn worker has its own cache client; what they share is the count kept in Redis."""
    url = redis_cache.url(0)
    with override_settings(API_THROTTLE_RATE="3/min", CACHES={
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}):
        try:
            assert [personas.member.get("me").status_code for _ in range(2)] == [200, 200]
            keys = [key.decode() for key in redis.Redis.from_url(url).keys("*throttle:token:*")]
            assert len(keys) == 1 and personas.member.token.key_hash in keys[0]
            # A request counted by another worker: another client of the same Redis raises the count.
            redis.Redis.from_url(url).incr(keys[0])
            _throttled(personas.member.get("me"))
        finally:
            caches["default"].close()
