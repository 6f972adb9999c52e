"""A real headless Chromium for the page tests (Selenium with Debian's chromium and chromium-driver)."""

from __future__ import annotations

import shutil
import tempfile
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.servers import find_binary, missing_server

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                  "--disable-dev-shm-usage", "--window-size=1400,1000"]
PASSWORD = "a-long-test-password"


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
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages, for console_errors()
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def seed_and_log_in(browser, live_server, settings, tmp_path, days: int = 3):
    """The demo data, a superuser "ops", and the browser logged in as them; returns the user."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settings.DATA_DIR = tmp_path
    call_command("seed_demo", "--days", str(days), stderr=StringIO())
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)
    browser.get(live_server.url + "/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # click() returns before the next page has loaded: wait for the login page to be left.
    WebDriverWait(browser, 30).until(lambda driver: "/admin/login/" not in driver.current_url)
    assert "logout" in browser.page_source.lower()
    return user


def console_errors(browser) -> list[str]:
    """The console's errors since the last call (a failed request, a script error)."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def drawn_charts(browser, timeout: float = 30) -> dict[str, dict]:
    """Wait until every chart of the page is drawn; {chart id: {"rendered": "chart" | "empty", "points": n}}."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def all_drawn(driver):
        charts = driver.find_elements(By.CSS_SELECTOR, ".tw-chart")
        return charts if all(chart.get_attribute("data-rendered") for chart in charts) else False

    charts = WebDriverWait(browser, timeout).until(all_drawn)
    return {chart.get_attribute("id"): {"rendered": chart.get_attribute("data-rendered"),
                                        "points": int(chart.get_attribute("data-points"))} for chart in charts}


def save_screenshot(browser, name: str) -> None:
    """With TOOLWEAVER_SCREENSHOTS=1, the whole page at a laptop's width to docs/screenshots/<name>.png
    (or TOOLWEAVER_SCREENSHOTS_DIR); otherwise nothing."""
    import os
    from pathlib import Path

    if os.environ.get("TOOLWEAVER_SCREENSHOTS") != "1":
        return
    directory = Path(os.environ.get("TOOLWEAVER_SCREENSHOTS_DIR")
                     or Path(__file__).resolve().parents[2] / "docs" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    width, height = browser.get_window_size()["width"], browser.get_window_size()["height"]
    browser.set_window_size(1280, browser.execute_script("return document.documentElement.scrollHeight") + 120)
    browser.save_screenshot(str(directory / f"{name}.png"))
    browser.set_window_size(width, height)
