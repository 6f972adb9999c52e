"""The rule page and the incident list in a real headless Chromium: the rule's preview is drawn with every point
of its spec, "Preview changes" redraws it for the edited (unsaved) fields with what the change would have done, and
an incident is resolved by clicking the list's bulk action."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from alerts.models import AlertIncident, AlertRule, IncidentStatus
from analytics.models import Organization
from analytics.platform.charts import point_count
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from tests.integration.browser import console_errors, drawn_charts, save_screenshot, seed_and_log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_rule_page_previews_the_edited_rule_before_it_is_saved(browser, live_server, settings, tmp_path):
    user = seed_and_log_in(browser, live_server, settings, tmp_path, days=1)
    acme = Organization.objects.create(slug="preview-acme", name="Preview Acme")
    now = timezone.now()
    ingest_metric_items(acme, [MetricItem("cpu.preview", 95.0 if 60 <= age < 90 else 10.0, "gauge", "", "", {},
                                          now - timedelta(minutes=age)) for age in range(180)])
    rule = AlertRule.objects.create(org=acme, name="cpu hot", metric_name="cpu.preview", condition_operator="gt",
                                    threshold=80.0, window_seconds=300)
    path = f"/admin/alerts/alertrule/{rule.pk}/change/?preview_days=1"
    client = Client()
    client.force_login(user)
    expected = point_count(client.get(path).context["preview_chart"])
    console_errors(browser)

    browser.get(live_server.url + path)
    assert drawn_charts(browser)["preview-chart"] == {"rendered": "chart", "points": expected} and expected >= 35
    summary = browser.find_element(By.ID, "preview-summary")
    assert summary.text == "This rule would have opened 1 incident in the last day."
    threshold = browser.find_element(By.NAME, "threshold")
    threshold.clear()
    threshold.send_keys("99")
    browser.find_element(By.ID, "preview-changes").click()
    WebDriverWait(browser, 30).until(lambda driver: "instead of" in summary.text)
    assert summary.text == "This change would have opened 0 incidents instead of 1 in the last day."
    assert drawn_charts(browser)["preview-chart"] == {"rendered": "chart", "points": expected}
    save_screenshot(browser, "alert-rule-preview")
    assert console_errors(browser) == []
    rule.refresh_from_db()
    assert rule.threshold == 80.0  # previewed, not saved


def test_an_incident_is_resolved_by_clicking_the_bulk_action(browser, live_server, settings, tmp_path):
    seed_and_log_in(browser, live_server, settings, tmp_path, days=1)
    incident = AlertIncident.objects.filter(status=IncidentStatus.OPEN).first()
    console_errors(browser)  # the login page's, if any
    browser.get(f"{live_server.url}/admin/alerts/alertincident/")
    browser.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{incident.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("resolve_incidents")
    browser.find_element(By.NAME, "index").click()
    WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.NAME, "note"))
    browser.find_element(By.NAME, "note").send_keys("fixed the disk")
    browser.find_element(By.CSS_SELECTOR, "form input[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "ul.messagelist li.success"))
    assert "Resolve: 1 incident(s)." in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_by) == ("resolved", "ops")
    assert console_errors(browser) == []
