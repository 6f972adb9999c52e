"""The ops pages in a real headless Chromium: log in, open each page, see the demo data; and every page of
every model the admin registers (list, detail, add where allowed) opens without a server error.

With TOOLWEAVER_SCREENSHOTS=1 the pages are also saved to docs/screenshots/.
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from tests.integration.browser import seed_and_log_in

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PAGES = [
    # (path, text the page must show, screenshot name)
    ("/admin/", "ToolWeaver Analytics", "admin-home"),
    ("/admin/monitoring/service/", "platform-database", "services"),
    ("/admin/alerts/alertincident/", "API latency p95 high", "incidents"),
    ("/admin/alerts/alertrule/", "Order queue backed up", "alert-rules"),
    ("/admin/analytics/skill/", "parse_json", "skills"),
    ("/admin/analytics/metricseries/", "api.response_time", "metric-series"),
]


@pytest.mark.django_db(transaction=True)
def test_ops_pages_render_with_demo_data(browser, live_server, settings, tmp_path):
    from selenium.webdriver.common.by import By

    seed_and_log_in(browser, live_server, settings, tmp_path)
    save = os.environ.get("TOOLWEAVER_SCREENSHOTS") == "1"
    for path, expected, name in PAGES:
        browser.get(live_server.url + path)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert expected in body, (path, body[:500])
        assert "Server Error" not in body
        if save:
            SCREENSHOTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def fill_what_the_demo_leaves_empty():
    """A row for each registered model the demo data leaves empty, so that its detail page is opened too."""
    from django.contrib.auth.models import Group
    from django_celery_beat.models import ClockedSchedule, SolarSchedule

    from alerts.models import AlertIncident, IncidentStatus, Notification, Silence
    from alerts.notifications import outbox
    from alerts.services import incidents
    from analytics.models import Organization, RecommendationLog, Skill, SkillHealthScore
    from monitoring.models import Service, ServiceTransition

    now = timezone.now()
    if not Silence.objects.exists():  # its page was a 500 (issue 12): silence an incident as ops would
        incident = AlertIncident.objects.filter(status=IncidentStatus.OPEN).first()
        incidents.silence(incident.pk, until=now + timedelta(hours=4), actor="ops", note="deploy window")
    org, skill = Organization.objects.order_by("pk").first(), Skill.objects.order_by("pk").first()
    if not SkillHealthScore.objects.exists():
        SkillHealthScore.objects.create(org=org, skill=skill, score=42.0, source="admin", recorded_at=now)
    if not RecommendationLog.objects.exists():
        RecommendationLog.objects.create(org=org, user_id="user_1", skill=skill, score=0.5, reason="demo",
                                         strategy="popularity")
    if not ServiceTransition.objects.exists():
        ServiceTransition.objects.create(service=Service.objects.first(), from_status="healthy",
                                         to_status="degraded", at=now, reason="slow answers")
    if not Group.objects.exists():
        Group.objects.create(name="ops")
    if not ClockedSchedule.objects.exists():
        ClockedSchedule.objects.create(clocked_time=now + timedelta(days=1))
    if not SolarSchedule.objects.exists():
        SolarSchedule.objects.create(event="sunrise", latitude=52.52, longitude=13.405)
    if not Notification.objects.exists():  # the demo's email channel, told of the open incidents
        outbox.run()


def every_admin_page(user) -> list[tuple[str, str]]:
    """(url, heading the page must show) of every registered model: its list, the detail page of one of its
    objects, and its add page where the admin allows adding."""
    request = RequestFactory().get("/admin/")
    request.user = user
    pages, empty = [], []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        pages.append((reverse(f"{name}_changelist"), f"{opts.verbose_name}"))
        obj = model_admin.get_queryset(request).first()
        if obj is None:
            empty.append(opts.label)
        else:
            pages.append((reverse(f"{name}_change", args=[obj.pk]), str(opts.verbose_name)))
        if model_admin.has_add_permission(request):
            pages.append((reverse(f"{name}_add"), f"Add {opts.verbose_name}"))
    assert not empty, f"no row to open the detail page of: {empty} (add demo data, or a row in this test)"
    return pages


@pytest.mark.django_db(transaction=True)
def test_every_admin_page_of_every_model_opens_without_a_server_error(browser, live_server, settings, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    user = seed_and_log_in(browser, live_server, settings, tmp_path)
    fill_what_the_demo_leaves_empty()
    pages = every_admin_page(user)
    assert len(pages) >= 2 * len(admin.site._registry)

    client = Client(raise_request_exception=False)
    client.force_login(user)
    failures = []
    for path, heading in pages:
        status = client.get(path).status_code
        browser.get(live_server.url + path)
        # Poll until the page is there: the admin's content, or an error page without it.
        WebDriverWait(browser, 30).until(lambda driver: driver.execute_script("return document.readyState")
                                         == "complete" and driver.find_elements(By.TAG_NAME, "h1"))
        title, body = browser.title, browser.find_element(By.TAG_NAME, "body").text
        shown = " ".join(h1.text for h1 in browser.find_elements(By.CSS_SELECTOR, "#content h1"))
        if status != 200 or "Server Error" in title + body or heading.lower() not in shown.lower():
            failures.append(f"{path}: status {status}, title {title!r}, heading {shown!r}, page {body[:300]!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db(transaction=True)
def test_an_incident_is_acknowledged_from_its_own_page(browser, live_server, settings, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from alerts.models import AlertIncident, IncidentStatus

    seed_and_log_in(browser, live_server, settings, tmp_path)
    incident = AlertIncident.objects.filter(status=IncidentStatus.OPEN).first()
    browser.get(f"{live_server.url}/admin/alerts/alertincident/{incident.pk}/change/")
    form = browser.find_element(By.ID, "step-acknowledge")
    form.find_element(By.NAME, "acknowledge-note").send_keys("on it")
    form.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "ul.messagelist li.success"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "acknowledged by ops: on it" in body, body[:2000]
    assert not browser.find_elements(By.ID, "step-acknowledge")  # acknowledged: not offered again
    assert browser.find_elements(By.ID, "step-silence") and browser.find_elements(By.ID, "step-resolve")
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == ("acknowledged", "ops")
