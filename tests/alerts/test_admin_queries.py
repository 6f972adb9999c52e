"""Alerting change lists cost the same number of queries for 2 rows as for 6."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import AlertIncident, AlertRule, IncidentEvent, Silence
from alerts.services.evaluation import evaluate_rules
from tests.alerts.factories import make_rule, org, record

pytestmark = pytest.mark.django_db


def add_firing_rules(first, last):
    """Rules of an org and platform rules (org NULL), each firing with an incident, a move and a silence."""
    now = timezone.now()
    for index in range(first, last):
        organization = org() if index % 2 else None
        rule = make_rule(organization, name=f"rule {index}", metric_name=f"cpu.{index}")
        record(organization, rule.metric_name, 99, now - timedelta(seconds=5))
        evaluate_rules(now, rules=AlertRule.objects.filter(pk=rule.pk))
        incident = AlertIncident.objects.get(rule=rule)
        Silence.objects.create(incident=incident, starts_at=now, until=now + timedelta(hours=1), note="s")


def page_queries(client, url) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries.captured_queries), response


@pytest.mark.parametrize("url", ["/admin/alerts/alertrule/", "/admin/alerts/alertincident/",
                                 "/admin/alerts/incidentevent/", "/admin/alerts/silence/"])
def test_change_lists_do_not_query_per_row(admin_client, url):
    add_firing_rules(0, 2)
    with_two, first = page_queries(admin_client, url)
    rows_of_two = len(first.context["cl"].result_list)
    add_firing_rules(2, 6)
    with_six, second = page_queries(admin_client, url)
    assert len(second.context["cl"].result_list) >= rows_of_two + 4
    assert with_six == with_two


def test_rule_list_shows_org_and_state(admin_client):
    add_firing_rules(0, 4)
    _, response = page_queries(admin_client, "/admin/alerts/alertrule/")
    html = response.content.decode()
    assert html.count(">firing</strong>") == 4
    assert "acme" in html
    assert IncidentEvent.objects.exists()
