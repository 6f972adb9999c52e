"""Load (issue 18): 8 clients send 50,000 events each through gunicorn to PostgreSQL, one batch in ten sent again
with the same event ids; afterwards the stored count is the number of distinct events exactly, every retried
event was reported a duplicate, and no answer was a 5xx.

The figures go to the test's output (``LOAD: ...``) and to docs/reliability.md."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from analytics.models import ApiToken, MetricEvent, Organization

pytestmark = [pytest.mark.long, pytest.mark.postgres_only, pytest.mark.servers]

CLIENTS, EVENTS_PER_CLIENT, BATCH = 8, 50_000, 5_000
RETRIED_EVERY = 10  # one batch in ten is sent twice


def batches(client: int, start) -> list[list[dict]]:
    """The client's events in batches, each event with its own id, spread over the last hour."""
    events = [{"metric_name": f"load.latency.{client % 4}", "value": float(number % 997), "metric_type": "gauge",
               "tags": {"client": str(client), "shard": str(number % 5)},
               "timestamp": (start + timedelta(milliseconds=number * 7)).isoformat(),
               "event_id": f"load-{client}-{number}"} for number in range(EVENTS_PER_CLIENT)]
    return [events[i:i + BATCH] for i in range(0, len(events), BATCH)]


def test_eight_clients_store_every_distinct_event_once_and_never_see_a_5xx(web_server):
    acme = Organization.objects.create(slug="load", name="Load")
    _, raw = ApiToken.issue(acme, name="load")
    server = web_server(workers=2)
    url = server.url + "/api/v1/analytics/metrics/batch"
    start = timezone.now() - timedelta(hours=1)
    statuses: Counter[int] = Counter()
    reported = Counter()
    lock = threading.Lock()
    failures: list[str] = []

    def send(client: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {raw}"
        for index, batch in enumerate(batches(client, start)):
            for _attempt in range(2 if index % RETRIED_EVERY == 0 else 1):
                response = session.post(url, json=batch, timeout=120)
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 201:
                        body = response.json()
                        reported["accepted"] += body["accepted"]
                        reported["duplicates"] += body["duplicates"]
                    else:
                        failures.append(f"{response.status_code}: {response.text[:200]}")

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(client,)) for client in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started

    sent = sum(statuses.values()) * BATCH
    distinct = CLIENTS * EVENTS_PER_CLIENT
    stored = MetricEvent.objects.filter(org=acme).count()
    fives = sum(count for status, count in statuses.items() if status >= 500)
    print(f"\nLOAD: clients={CLIENTS} sent={sent} distinct={distinct} stored={stored} "
          f"duplicates_rejected={reported['duplicates']} 5xx={fives} statuses={dict(statuses)} "
          f"seconds={seconds:.1f} events_per_s={sent / seconds:.0f}")
    assert not failures, failures[:3]
    assert fives == 0
    assert stored == distinct == reported["accepted"]
    assert reported["duplicates"] == sent - distinct == CLIENTS * (EVENTS_PER_CLIENT // BATCH // RETRIED_EVERY) * BATCH
    assert MetricEvent.objects.filter(org=acme).values("event_id").distinct().count() == distinct
