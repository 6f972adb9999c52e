"""`make run`'s program serves the admin with demo data, the README's first commands work against it, and
Ctrl-C leaves nothing behind."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.servers import free_port, missing_server, stop_pid, wait_for

pytestmark = pytest.mark.sqlite_only  # the child processes use SQLite whatever the run's database

ROOT = Path(__file__).resolve().parents[2]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, follow: bool = True):
    """(status, headers, body) of a GET, errors included."""
    opener = urllib.request.build_opener(*([] if follow else [_NoRedirects()]))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def readme_blocks(heading: str) -> list[str]:
    """The bash blocks of a README section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _descendants(pid: int) -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                child = int(entry.name)
                children |= {child} | _descendants(child)
    return children


def test_run_serves_the_admin_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TOOLWEAVER_TEST_DB_NAME"}}
    env.update(TOOLWEAVER_DATA_DIR=str(tmp_path), ANALYTICS_DB_PATH=str(tmp_path / "analytics.db"))
    env.pop("DJANGO_DEBUG", None)
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "toolweaver_site.devserver", "--port", str(port), "--days", "2"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        def admin_login_page():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2) as response:
                return response.status == 200 and b"ToolWeaver Analytics" in response.read()

        wait_for(admin_login_page, 120, "the admin login page", interval=0.5)
        base = f"http://127.0.0.1:{port}"
        children = _descendants(process.pid)
        assert len(children) >= 2  # web server and worker
        output = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}/admin/" in output and "password" in output
        assert (tmp_path / "demo-tokens.txt").exists()

        check_first_five_minutes(base, port, env, tmp_path)

        # The worker with beat comes up too (it logs "ready." once connected to the broker).
        wait_for(lambda: "ready." in (tmp_path / "run.log").read_text(), 60, "the worker")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=40)
        wait_for(lambda: not [pid for pid in children if _alive(pid)], 10, "every child to stop")
    finally:
        if process.poll() is None:
            leftovers = _descendants(process.pid)
            stop_pid(process.pid, signal.SIGINT, timeout=40)
            for pid in leftovers:
                stop_pid(pid)
        log.close()


def _paste(script: str, port: int, env: dict) -> str:
    """The output of README commands pasted into one shell in the checkout, against ``port`` instead of 8000."""
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _user_day(token_and_me: str, port: int, env: dict, day: str) -> dict:
    """user_123's sessions and active seconds on ``day`` (zero when it has no stored day yet)."""
    output = _paste(f"{token_and_me}\necho\n"
                    f'curl -s -H "Authorization: Bearer $TOKEN" '
                    f'"http://127.0.0.1:8000/api/v1/analytics/user/user_123?period_type=day&start={day}"',
                    port, env)
    found = json.loads(output.splitlines()[-1])
    if "detail" in found:  # 404: no stored day for the user
        return {"sessions": 0, "active_seconds": 0}
    assert found["period_start"].startswith(day[:10]), found
    return found


def check_first_five_minutes(base: str, port: int, env: dict, tmp_path: Path) -> None:
    """What a new user does first against `make run` (DEBUG on), as the README says."""
    # The README's "Using the API" blocks, pasted into one shell in the checkout (only the port differs): a
    # token, `/me` with it, then the schema downloaded with it (into a folder of the test's own).
    if shutil.which("curl") is None:
        missing_server("curl is not installed (apt-get install curl)")
    token_and_me, schema, activity = readme_blocks("Using the API")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    me = json.loads(_paste(f"{token_and_me}\necho\ncd {downloads}\n{schema}", port, env))
    assert (me["org"], me["staff"], me["read_only"]) == ("acme", False, False)
    assert (downloads / "openapi.yaml").read_text().startswith("openapi: 3.1.0")

    # The activity block: an event in, its day computed, the user's day and the dashboard read back. Each
    # command's answer on a line of its own. user_123 is also a demo user, so its day before the block is read
    # first: the block adds its one session to whatever the demo gave that day.
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00")
    before = _user_day(token_and_me, port, env, today)
    lines = "\necho\n".join(activity.strip().splitlines())
    output = _paste(f"{token_and_me}\necho\n{lines}\necho", port, env)
    _, recorded, tracked, user_day, dashboard = [json.loads(line) for line in output.splitlines() if line]
    # The event has an event_id: pasted again (a developer's data directory persists), it is a duplicate.
    assert recorded in ({"accepted": 1, "duplicates": 0}, {"accepted": 0, "duplicates": 1})
    assert tracked["period_type"] == "day" and tracked["users"] >= 1
    assert (user_day["user_id"], user_day["period_type"]) == ("user_123", "day")
    added = recorded["accepted"]
    assert user_day["sessions"] == before["sessions"] + added and user_day["sessions"] >= 1
    assert user_day["active_seconds"] == before["active_seconds"] + 300 * added
    assert set(dashboard["current_metrics"]) == {"users", "agents", "contracts", "financial"}

    # `/` leads to the admin.
    status, headers, _ = fetch(f"{base}/", follow=False)
    assert (status, headers["Location"]) == (302, "/admin/")

    # DEBUG is on, yet an unknown API path and a non-integer id answer the API's JSON 404, not the URL list.
    for path in ("/api/v1/analytics/no-such-endpoint", "/api/v1/analytics/alerts/rules/abc"):
        status, headers, body = fetch(base + path)
        assert status == 404 and headers["Content-Type"] == "application/json", (path, body[:200])
        assert json.loads(body) == {"detail": "Not found."}

    # Swagger UI's files come from this server (drf-spectacular-sidecar), not from a CDN.
    status, headers, body = fetch(f"{base}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert status == 200 and b"SwaggerUIBundle" in body

    # django-prometheus counted those requests, by URL name.
    status, _, body = fetch(f"{base}/metrics")
    metrics = body.decode()
    assert status == 200
    assert re.search(r'django_http_requests_total_by_view_transport_method_total\{[^}]*view="me"[^}]*\} [1-9]',
                     metrics), "the README's request to /me is counted"
    assert 'django_db_execute_total{alias="default",vendor="sqlite"}' in metrics
