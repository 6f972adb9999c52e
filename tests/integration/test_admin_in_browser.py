"""The ops pages in a real headless Chromium: log in, open each page, see the demo data.

With TOOLWEAVER_SCREENSHOTS=1 the pages are also saved to docs/screenshots/.
"""

import os
import shutil
import tempfile
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.servers import find_binary, missing_server

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                  "--disable-dev-shm-usage", "--window-size=1400,1000"]

PAGES = [
    # (path, text the page must show, screenshot name)
    ("/admin/", "ToolWeaver Analytics", "admin-home"),
    ("/admin/monitoring/service/", "platform-database", "services"),
    ("/admin/alerts/alertincident/", "API latency p95 high", "incidents"),
    ("/admin/alerts/alertrule/", "Order queue backed up", "alert-rules"),
    ("/admin/analytics/skill/", "parse_json", "skills"),
    ("/admin/analytics/metricseries/", "api.response_time", "metric-series"),
]


@pytest.fixture
def browser():
    chromium, driver_path = find_binary("chromium"), find_binary("chromedriver")
    if not chromium or not driver_path:
        missing_server("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="tw-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_ops_pages_render_with_demo_data(browser, live_server, settings, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settings.DATA_DIR = tmp_path
    call_command("seed_demo", "--days", "3", stderr=StringIO())
    get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-test-password")

    browser.get(live_server.url + "/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys("a-long-test-password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # click() returns before the next page has loaded: wait for the login page to be left.
    WebDriverWait(browser, 30).until(lambda driver: "/admin/login/" not in driver.current_url)
    assert "logout" in browser.page_source.lower()

    save = os.environ.get("TOOLWEAVER_SCREENSHOTS") == "1"
    for path, expected, name in PAGES:
        browser.get(live_server.url + path)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert expected in body, (path, body[:500])
        assert "Server Error" not in body
        if save:
            SCREENSHOTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
