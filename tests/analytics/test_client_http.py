"""The http client backend (analytics/client/http.py) against a real local HTTP server: batches with event ids,
retries after no answer, 503 (honouring Retry-After) and 429 with the same event ids, drops a batch the API
refuses as invalid, says when its buffer is full, and never shows its token; and against the platform's own
API (Django's live server), every write stored once."""

import logging
import time

import pytest

from analytics.client import create_analytics_client
from analytics.client.http import BufferFull, HttpBackend
from analytics.models import ApiToken, Organization, SkillExecution
from tests.receivers import Reply, start_http_receiver
from tests.servers import free_port

TOKEN = "tw_secret-token-for-the-http-client"


@pytest.fixture
def receiver():
    started = []

    def start(statuses=(), default=201):
        server = start_http_receiver(statuses, default=Reply(default, body=b'{"accepted": 1}'))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def client_for(server_url, **options) -> HttpBackend:
    return HttpBackend(url=server_url + "/api/v1/analytics/", token=TOKEN, **options)


def test_writes_go_in_batches_with_an_event_id_each_and_the_token(receiver):
    server = receiver()
    client = client_for(server.base_url)
    for number in range(3):
        client.record_skill_execution("parse_json", success=number != 1, latency_ms=10.0 + number,
                                      user_id="u1", org_id="ignored")
    client.rate_skill("parse_json", 5)
    assert client.push(timeout=10)
    paths = [request.path for request in server.requests]
    assert paths[-1] == "/api/v1/analytics/skills/ratings"
    assert set(paths[:-1]) == {"/api/v1/analytics/skills/executions"}
    executions = [item for request in server.requests[:-1] for item in request.json()]
    assert [(item["success"], item["latency_ms"]) for item in executions] == [(True, 10.0), (False, 11.0),
                                                                              (True, 12.0)]
    assert len({item["event_id"] for item in executions}) == 3 and all("org_id" not in item for item in executions)
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    client.close()


def test_a_503_and_a_429_are_retried_with_the_same_event_ids_after_retry_after(receiver):
    server = receiver([Reply(503, headers={"Retry-After": "1"}), Reply(429, headers={"Retry-After": "1"})])
    client = client_for(server.base_url)
    client.record_skill_execution("parse_json", success=True, latency_ms=1.0)
    started = time.monotonic()
    assert client.push(timeout=15)
    assert time.monotonic() - started >= 1.9  # waited the Retry-After twice
    bodies = [request.json() for request in server.requests]
    assert [request.status for request in server.requests] == [503, 429, 201]
    assert bodies[0] == bodies[1] == bodies[2]
    assert client.health_check()["healthy"]
    client.close()


def test_no_answer_is_retried_with_backoff_until_the_platform_is_there():
    port = free_port()
    client = client_for(f"http://127.0.0.1:{port}")
    client.record_skill_install("parse_json", user_id="u1")
    time.sleep(0.3)
    health = client.health_check()
    assert not health["healthy"] and "1 item(s) buffered" in health["detail"] and "no answer" in health["detail"]
    assert client.pending() == 1
    assert not client.push(timeout=0.5)
    client.close(timeout=0.1)


def test_a_batch_refused_as_invalid_is_dropped_with_one_error_line(receiver, caplog):
    server = receiver([Reply(400, body=b'{"errors": {"latency_ms": ["bad"]}}')])
    client = client_for(server.base_url)
    with caplog.at_level(logging.ERROR, logger="analytics.client.http"):
        client.record_skill_execution("parse_json", success=True, latency_ms=1.0)
        assert client.push(timeout=10)
    assert client.dropped == 1 and len(server.requests) == 1
    [line] = [record.getMessage() for record in caplog.records]
    assert "HTTP 400" in line and "latency_ms" in line and TOKEN not in line
    client.close()


def test_a_full_buffer_says_so_and_keeps_what_it_holds():
    client = client_for(f"http://127.0.0.1:{free_port()}", buffer_size=2)
    client.record_skill_execution("a", success=True, latency_ms=1.0)
    client.record_skill_execution("b", success=True, latency_ms=1.0)
    with pytest.raises(BufferFull, match="buffer is full: 2 items are waiting"):
        client.record_skill_execution("c", success=True, latency_ms=1.0)
    assert client.pending() == 2
    client.close(timeout=0.1)


def test_bad_input_is_refused_before_the_buffer_and_the_token_is_masked():
    client = client_for(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ValueError, match="latency_ms"):
        client.record_skill_execution("parse_json", success=True, latency_ms=-1)
    assert client.pending() == 0
    summary = client.get_config_summary()
    assert summary["api_token"] == "***" and TOKEN not in repr(summary)
    with pytest.raises(ValueError, match="ANALYTICS_API_URL"):
        HttpBackend(url="localhost:8000", token=TOKEN)
    client.close(timeout=0.1)


@pytest.mark.django_db(transaction=True)
def test_the_platforms_own_api_stores_every_write_once(live_server, settings):
    acme = Organization.objects.create(slug="acme", name="Acme")
    token, raw = ApiToken.issue(acme, name="program")
    settings.ANALYTICS_API_URL = live_server.url + "/api/v1/analytics/"
    settings.ANALYTICS_API_TOKEN = raw
    client = create_analytics_client("http")
    for number in range(2500):  # three batches
        client.record_skill_execution("parse_json", success=number % 10 != 0, latency_ms=float(number))
    assert client.push(timeout=60)
    assert SkillExecution.objects.filter(org=acme).count() == 2500
    assert SkillExecution.objects.filter(success=False).count() == 250
    client.close()
