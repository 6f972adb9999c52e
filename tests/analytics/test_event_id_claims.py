"""Event ids of large metric batches: on PostgreSQL a batch of OPTIMISTIC_CLAIM_IDS ids or more is claimed by a
plain INSERT into the key table first, and claimed again with ON CONFLICT DO NOTHING when any of its ids is
already stored. Whichever way it went, every distinct event is stored once and the answer counts the rest as
duplicates, also when another writer stores the same ids while the batch waits for it."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import MetricEvent, MetricEventKey, Organization
from analytics.services import metrics_ingest
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

LARGE = metrics_ingest.OPTIMISTIC_CLAIM_IDS * 2


def items(ids, value: float = 1.0) -> list[MetricItem]:
    moment = timezone.now() - timedelta(minutes=5)
    return [MetricItem("claims", value, "gauge", tags={"host": "h1"}, timestamp=moment, event_id=event_id)
            for event_id in ids]


def stored_ids(org) -> list[str]:
    return sorted(MetricEvent.objects.filter(org=org).values_list("event_id", flat=True))


@pytest.mark.django_db
def test_a_large_batch_holding_one_stored_id_stores_every_other_event_once():
    org = Organization.objects.create(slug="acme")
    first = [f"a-{n}" for n in range(LARGE)]
    assert ingest_metric_items(org, items(first)).model_dump() == {"accepted": LARGE, "duplicates": 0}

    # One id already stored, and one repeated inside the batch: the plain insert is refused, the second
    # claim keeps the rest.
    second = [f"b-{n}" for n in range(LARGE)] + ["a-7", "b-3"]
    assert ingest_metric_items(org, items(second, value=2.0)).model_dump() == {"accepted": LARGE, "duplicates": 2}
    assert stored_ids(org) == sorted(first + second[:LARGE])
    assert MetricEvent.objects.get(org=org, event_id="a-7").value == 1.0  # the first one stays
    assert MetricEventKey.objects.filter(org_key=org.id).count() == 2 * LARGE

    # The same batch again: nothing new.
    assert ingest_metric_items(org, items(second)).model_dump() == {"accepted": 0, "duplicates": LARGE + 2}
    assert len(stored_ids(org)) == 2 * LARGE


@pytest.mark.django_db
def test_ids_that_json_escapes_are_claimed_and_stored_as_sent():
    org = Organization.objects.create(slug="acme")
    odd = ['say "hi"', "back\\slash", "tab-less é", "😀 emoji", "日本"]
    for batch in (odd, odd + [f"pad-{n}" for n in range(LARGE)]):  # each way of claiming
        ingest_metric_items(org, items(batch))
    assert stored_ids(org) == sorted(odd + [f"pad-{n}" for n in range(LARGE)])
    assert sorted(MetricEventKey.objects.filter(org_key=org.id).values_list("event_id", flat=True)) == stored_ids(org)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_batch_waiting_for_another_writer_of_its_ids_stores_none_of_them_twice():
    org = Organization.objects.create(slug="acme")
    ids = [f"race-{n}" for n in range(LARGE)]
    holding, answers, errors = threading.Event(), {}, []
    release = threading.Event()

    def first_writer():
        try:
            with transaction.atomic():
                answers["first"] = ingest_metric_items(org, items(ids[: LARGE // 2] + ["race-shared"]))
                holding.set()
                release.wait(30)  # its ids are claimed but not committed yet
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            holding.set()
            connection.close()

    def second_writer():
        try:
            answers["second"] = ingest_metric_items(org, items(ids))  # waits on the uncommitted ids
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    first = threading.Thread(target=first_writer)
    first.start()
    assert holding.wait(30)
    second = threading.Thread(target=second_writer)
    second.start()
    second.join(1)
    assert second.is_alive()  # blocked by the first writer's claims
    release.set()
    first.join(30)
    second.join(30)

    assert not errors, errors
    assert answers["first"].model_dump() == {"accepted": LARGE // 2 + 1, "duplicates": 0}
    assert answers["second"].model_dump() == {"accepted": LARGE - LARGE // 2, "duplicates": LARGE // 2}
    assert stored_ids(org) == sorted(ids + ["race-shared"])
