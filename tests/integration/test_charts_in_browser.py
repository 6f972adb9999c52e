"""The object pages' charts in a real headless Chromium: drawn from the local plotly.js with every point of
their spec, no console error, and the range picker changes the data."""

import pytest
from django.test import Client
from selenium.webdriver.support.ui import WebDriverWait

from alerts.models import AlertIncident, IncidentStatus
from analytics.models import MetricSeries
from analytics.platform.charts import point_count
from monitoring.models import Service
from tests.integration.browser import console_errors, drawn_charts, save_screenshot, seed_and_log_in

pytestmark = pytest.mark.django_db(transaction=True)


def expected_points(user, path: str, context_key: str) -> int:
    client = Client()
    client.force_login(user)
    return point_count(client.get(path).context[context_key])


def test_object_pages_draw_every_point_of_their_charts(browser, live_server, settings, tmp_path):
    user = seed_and_log_in(browser, live_server, settings, tmp_path)
    series = MetricSeries.objects.filter(name="api.response_time").order_by("-last_seen").first()
    service = Service.objects.get(name="platform-database")
    incident = AlertIncident.objects.filter(status=IncidentStatus.OPEN).first()
    pages = [
        (f"/admin/analytics/metricseries/{series.pk}/change/", {"series-chart": "series_chart"}, "metric-series-page"),
        (f"/admin/monitoring/service/{service.pk}/change/",
         {"uptime-chart": "uptime_chart", "response-time-chart": "response_time_chart"}, "service-page"),
        (f"/admin/alerts/alertincident/{incident.pk}/change/", {"incident-chart": "metric_chart"}, "incident-page"),
    ]
    console_errors(browser)  # the login page's, if any
    for path, charts, screenshot in pages:
        browser.get(live_server.url + path)
        drawn = drawn_charts(browser)
        save_screenshot(browser, screenshot)
        for chart_id, context_key in charts.items():
            expected = expected_points(user, path, context_key)
            assert drawn[chart_id]["points"] == expected, (path, chart_id)
            assert drawn[chart_id]["rendered"] == ("chart" if expected else "empty"), (path, chart_id)
        assert console_errors(browser) == [], path
    # The demo's API response times: a day of data at least, so the 24h chart is drawn, not empty.
    browser.get(f"{live_server.url}/admin/analytics/metricseries/{series.pk}/change/")
    day = drawn_charts(browser)["series-chart"]["points"]
    browser.find_element("link text", "7d").click()
    WebDriverWait(browser, 30).until(lambda driver: "range=7d" in driver.current_url)
    week = drawn_charts(browser)["series-chart"]
    assert day > 0 and week["rendered"] == "chart"
    assert week["points"] == expected_points(user, f"/admin/analytics/metricseries/{series.pk}/change/?range=7d",
                                             "series_chart")
