"""The rule page's preview in the admin (test client; tests/integration/test_rule_page_in_browser.py clicks it in
Chromium): the saved rule's chart and summary on the page, and the "Preview changes" view that previews the form
as edited, unsaved, against the saved rule."""

from datetime import timedelta

import pytest
from django.forms import JSONField
from django.utils import timezone

from alerts.models import AlertIncident, AlertRule
from analytics.platform.charts import point_count
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from tests.alerts.factories import make_rule, org

pytestmark = pytest.mark.django_db


def hot_hour(organization):
    """The last three hours, one event a minute: 95 from 90 to 60 minutes ago, else 10."""
    now = timezone.now()
    ingest_metric_items(organization, [
        MetricItem("cpu.usage", 95.0 if 60 <= age < 90 else 10.0, "gauge", "", "", {}, now - timedelta(minutes=age))
        for age in range(180)])


def page(rule) -> str:
    return f"/admin/alerts/alertrule/{rule.pk}/change/"


def form_data(admin_client, rule, **changes) -> dict:
    """The change form's fields as the page shows them, with ``changes`` typed in."""
    form = admin_client.get(page(rule)).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, JSONField) and not isinstance(value, str):
            value = field.prepare_value(value)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    return {**data, **changes}


def test_the_rule_page_charts_what_the_saved_rule_would_have_done(admin_client):
    acme = org()
    hot_hour(acme)
    rule = make_rule(acme, threshold=80.0)
    response = admin_client.get(page(rule) + "?preview_days=1")
    assert response.status_code == 200
    assert response.context["preview_summary"] == "This rule would have opened 1 incident in the last day."
    chart = response.context["preview_chart"]
    # A 5-minute rule over the three hours of data: 36 windows, 35 when the oldest one reaches past the data.
    assert point_count(chart) in (35, 36)
    assert [band["label"] for band in chart["bands"]] == ["incident"]
    assert chart["thresholds"] == [{"name": "threshold", "value": 80.0}]
    assert 'id="preview-changes"' in response.content.decode()


def test_preview_changes_compares_the_edited_form_with_the_saved_rule_and_saves_nothing(admin_client):
    acme = org()
    hot_hour(acme)
    rule = make_rule(acme, threshold=80.0)
    data = form_data(admin_client, rule, threshold="99", preview_days="1")
    response = admin_client.post(page(rule).replace("change/", "preview/"), data)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["summary"] == "This change would have opened 0 incidents instead of 1 in the last day."
    assert body["chart"]["thresholds"] == [{"name": "threshold", "value": 99.0}] and body["chart"]["bands"] == []
    rule.refresh_from_db()
    assert rule.threshold == 80.0 and not AlertIncident.objects.exists()


def test_a_new_rule_is_previewed_before_it_exists(admin_client):
    acme = org()
    hot_hour(acme)
    rule = make_rule(acme, threshold=80.0)
    data = form_data(admin_client, rule, name="new one", preview_days="1")
    before = AlertRule.objects.count()
    body = admin_client.post("/admin/alerts/alertrule/preview/", data).json()
    assert body["summary"] == "This rule would have opened 1 incident in the last day."
    assert AlertRule.objects.count() == before


def test_a_form_error_is_named_not_previewed(admin_client):
    rule = make_rule(org())
    response = admin_client.post(page(rule).replace("change/", "preview/"),
                                 form_data(admin_client, rule, threshold="hot"))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["threshold"]


def test_service_health_is_not_previewable_and_says_why(admin_client):
    rule = make_rule(org(), metric_name="service.health", condition_operator="lt", threshold=0.5)
    response = admin_client.get(page(rule))
    assert response.status_code == 200 and "cannot be previewed" in response.context["preview_unavailable"]
    answer = admin_client.post(page(rule).replace("change/", "preview/"), form_data(admin_client, rule))
    assert answer.status_code == 400 and list(answer.json()["errors"]) == ["metric_name"]


def test_the_preview_view_takes_posts_only_and_knows_its_rules(admin_client):
    rule = make_rule(org())
    assert admin_client.get(page(rule).replace("change/", "preview/")).status_code == 405
    assert admin_client.post("/admin/alerts/alertrule/999999/preview/", {}).status_code == 404
