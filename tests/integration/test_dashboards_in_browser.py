"""The ops home and the five dashboards in a real headless Chromium, on the demo data: every chart is drawn
(with the points its spec holds; the demo's data where it has some), no console error, the pages fit a laptop's
width, and the range picker changes the data.

With TOOLWEAVER_SCREENSHOTS=1 the pages are also saved to docs/screenshots/ (or TOOLWEAVER_SCREENSHOTS_DIR).
"""

import json
import os
from pathlib import Path

import pytest

from analytics.platform.charts import point_count
from tests.integration.browser import console_errors, drawn_charts, seed_and_log_in

SCREENSHOTS = Path(os.environ.get("TOOLWEAVER_SCREENSHOTS_DIR")
                   or Path(__file__).resolve().parents[2] / "docs" / "screenshots")
LAPTOP = (1280, 800)
# Each page's charts, and those the demo (3 days of it) fills; the others may say what to do instead.
PAGES = [
    ("/admin/", {"ingest-rate"}, {"ingest-rate"}),
    ("/admin/dashboards/usage/", {"executions", "success-rate", "top-skills", "trending-skills"},
     {"executions", "success-rate", "top-skills", "trending-skills"}),
    ("/admin/dashboards/leaderboards/", {"board-usage", "board-rating", "board-most-improved", "board-trending-new"},
     {"board-usage", "board-rating", "board-trending-new"}),
    ("/admin/dashboards/performance/", {"skill-latency", "slowest-skills", "endpoint-latency", "endpoint-errors"},
     {"skill-latency", "slowest-skills", "endpoint-latency", "endpoint-errors"}),
    ("/admin/dashboards/adoption/", {"skills-per-user", "org-adoption", "weekly-growth"},
     {"skills-per-user", "org-adoption"}),  # growth needs a week before: the 3-day demo has none
    ("/admin/dashboards/health/", {"health-scores", "uptime", "incidents"}, {"health-scores", "uptime", "incidents"}),
]


def spec_points(browser, chart_id: str) -> int:
    """The points of the chart's spec, as the server wrote it into the page."""
    from selenium.webdriver.common.by import By

    return point_count(json.loads(browser.find_element(By.ID, f"{chart_id}-spec").get_attribute("textContent")))


def fits_the_width(browser) -> bool:
    return browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.django_db(transaction=True)
def test_the_ops_home_and_every_dashboard_draw_their_charts(browser, live_server, settings, tmp_path):
    from selenium.webdriver.common.by import By

    seed_and_log_in(browser, live_server, settings, tmp_path)
    browser.set_window_size(*LAPTOP)
    console_errors(browser)  # the login's messages are not the pages'
    save = os.environ.get("TOOLWEAVER_SCREENSHOTS") == "1"
    for path, expected, with_data in PAGES:
        browser.get(live_server.url + path)
        charts = drawn_charts(browser)
        if save:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = "admin-home-ops" if path == "/admin/" else "dashboard-" + path.rstrip("/").rsplit("/", 1)[-1]
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(LAPTOP[0], height + 120)  # the whole page
            browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
            browser.set_window_size(*LAPTOP)
        assert set(charts) == expected, path
        for chart_id, drawn in charts.items():
            assert drawn["points"] == spec_points(browser, chart_id), (path, chart_id)
            assert drawn["rendered"] == ("chart" if drawn["points"] else "empty"), (path, chart_id)
        empty = {chart_id for chart_id in with_data if charts[chart_id]["rendered"] != "chart"}
        assert not empty, f"{path}: no demo data drawn in {empty}"
        for chart_id, drawn in charts.items():
            if drawn["rendered"] == "empty":  # says what to do
                assert "No " in browser.find_element(By.ID, chart_id).text, (path, chart_id)
        assert console_errors(browser) == [], path
        assert fits_the_width(browser), f"{path} scrolls sideways at {LAPTOP[0]}px"
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Server Error" not in body
        if path != "/admin/":
            assert "Home\n› Dashboards\n›" in body or "Home › Dashboards ›" in body, body[:300]


@pytest.mark.django_db(transaction=True)
def test_the_range_picker_changes_a_chart(browser, live_server, settings, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    seed_and_log_in(browser, live_server, settings, tmp_path)
    console_errors(browser)  # the login page's (its missing favicon)
    browser.get(live_server.url + "/admin/dashboards/usage/")
    day = drawn_charts(browser)["executions"]["points"]  # 24 hourly buckets, the demo fills them all
    old = browser.find_element(By.ID, "executions")
    browser.find_element(By.CSS_SELECTOR, '#tw-filters a[data-range="30d"]').click()
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(old))
    month = drawn_charts(browser)["executions"]["points"]  # daily buckets: the demo's 3 days and today
    assert "range=30d" in browser.current_url
    assert month == spec_points(browser, "executions")
    assert month != day and 0 < month < day, (day, month)
    selected = browser.find_element(By.CSS_SELECTOR, "#tw-filters a.selected").text
    assert selected == "30d"
    assert console_errors(browser) == []
