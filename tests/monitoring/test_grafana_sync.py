"""`manage.py grafana_sync` against a fake Grafana: a real HTTP server on loopback that speaks Grafana's API.

The fake checks what Grafana checks (the bearer key, the X-Grafana-Org-Id header, a viewer's key may read but
not write, a data source's name is unique, a dashboard needs a uid and a title), stores data sources by uid and
dashboards by uid, answers with Grafana's bodies, and records every request.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from monitoring.grafana import DATASOURCE_UID, GrafanaError, load_dashboards, sync
from tests.receivers import Reply, start_http_receiver
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "glsa_TopSecret_0123456789abcdef"
VIEWER_KEY = "glsa_ViewerOnly_0123456789abcdef"
ORG_ID = 3
DASHBOARD_UIDS = {"toolweaver-usage", "toolweaver-leaderboards", "toolweaver-performance", "toolweaver-adoption",
                  "toolweaver-health"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # parsed JSON, or None


@dataclass
class FakeGrafana:
    """Grafana's HTTP API, the part grafana_sync uses, for the org ORG_ID and the keys API_KEY and VIEWER_KEY."""

    server: ThreadingHTTPServer | None = None
    requests: list[Request] = field(default_factory=list)
    datasources: dict[str, dict] = field(default_factory=dict)  # by uid
    dashboards: dict[str, dict] = field(default_factory=dict)  # by uid: {"dashboard", "folderUid", "version"}
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def calls(self) -> list[tuple[str, str]]:
        return [(request.method, request.path) for request in self.requests]

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        key = headers.get("authorization", "")
        if key not in (f"Bearer {API_KEY}", f"Bearer {VIEWER_KEY}"):
            return 401, {"message": "Invalid API key", "traceID": ""}
        if headers.get("x-grafana-org-id") != str(ORG_ID):
            return 401, {"message": "The service account is not a member of the organization"}
        if method != "GET" and key == f"Bearer {VIEWER_KEY}":
            return 403, {"accessErrorId": "ACE0123456789",
                         "message": "You'll need additional permissions to perform this action. "
                                    "Permissions needed: datasources:create", "title": "Access denied"}
        if (method, path) == ("GET", "/api/org"):
            return 200, {"id": ORG_ID, "name": "ToolWeaver Org", "address": {}}
        if match := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
            return self.datasource(method, match.group(1), body)
        if (method, path) == ("POST", "/api/datasources"):
            return self.create_datasource(body)
        if method == "GET" and (match := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path)):
            stored = self.dashboards.get(match.group(1))
            if stored is None:
                return 404, {"message": "Dashboard not found"}
            return 200, {"dashboard": stored["dashboard"],
                         "meta": {"folderUid": stored["folderUid"], "version": stored["version"],
                                  "provisioned": False}}
        if (method, path) == ("POST", "/api/dashboards/db"):
            return self.save_dashboard(body)
        return 404, {"message": "Not found"}

    def datasource(self, method: str, uid: str, body: Any) -> tuple[int, Any]:
        stored = self.datasources.get(uid)
        if stored is None:
            return 404, {"message": "Data source not found"}
        if method == "GET":
            return 200, stored
        if method != "PUT":
            return 404, {"message": "Not found"}
        if any(other["name"] == body["name"] for other_uid, other in self.datasources.items() if other_uid != uid):
            return 409, {"message": "data source with the same name already exists"}
        stored.update(body, version=stored["version"] + 1)
        return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource updated",
                     "name": stored["name"]}

    def create_datasource(self, body: Any) -> tuple[int, Any]:
        if not body.get("name") or not body.get("type"):
            return 400, {"message": "bad request data"}
        if any(other["name"] == body["name"] for other in self.datasources.values()):
            return 409, {"message": "data source with the same name already exists"}
        if body.get("uid") in self.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        stored = {**body, "id": self.next_id, "orgId": ORG_ID, "version": 1, "readOnly": False}
        self.next_id += 1
        self.datasources[body["uid"]] = stored
        return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added", "name": body["name"]}

    def save_dashboard(self, body: Any) -> tuple[int, Any]:
        dashboard = body.get("dashboard") or {}
        uid, title = dashboard.get("uid"), dashboard.get("title")
        if not uid or not title:
            return 400, {"message": "Dashboard title cannot be empty"}
        stored = self.dashboards.get(uid)
        if stored is not None and not body.get("overwrite"):
            return 412, {"status": "version-mismatch", "message": "The dashboard has been changed by someone else"}
        version = 1 if stored is None else stored["version"] + 1
        stored_id = self.next_id if stored is None else stored["dashboard"]["id"]
        self.next_id += stored is None
        self.dashboards[uid] = {"dashboard": {**dashboard, "id": stored_id, "version": version},
                                "folderUid": body.get("folderUid", ""), "version": version}
        return 200, {"id": stored_id, "uid": uid, "url": f"/d/{uid}/slug", "status": "success", "version": version,
                     "slug": "slug"}


def start_fake_grafana() -> FakeGrafana:
    grafana = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall per request

        def handle_any(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            body = json.loads(raw) if raw else None
            with grafana.lock:
                grafana.requests.append(Request(self.command, self.path, headers, copy.deepcopy(body)))
                status, answer = grafana.answer(self.command, self.path, headers, body)
                payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

        def log_message(self, format, *args):  # noqa: A002 - quiet test output
            pass

    grafana.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    grafana.server.daemon_threads = True
    threading.Thread(target=grafana.server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-grafana",
                     daemon=True).start()
    return grafana


@pytest.fixture
def grafana():
    server = start_fake_grafana()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def grafana_settings(settings):
    settings.GRAFANA_URL = ""
    settings.GRAFANA_API_KEY = ""
    settings.GRAFANA_ORG_ID = ORG_ID
    settings.GRAFANA_DATASOURCE_NAME = "ToolWeaver Prometheus"
    settings.GRAFANA_PROMETHEUS_URL = "http://prometheus.example:9090"
    settings.GRAFANA_DASHBOARD_REFRESH = "5m"
    return settings


def run_sync(*args: str, **options) -> str:
    out, err = StringIO(), StringIO()
    call_command("grafana_sync", *args, stdout=out, stderr=err, **options)
    text = out.getvalue() + err.getvalue()
    assert API_KEY not in text and VIEWER_KEY not in text
    return text


def sync_error(*args: str, **options) -> str:
    with pytest.raises(CommandError) as raised:
        run_sync(*args, **options)
    message = str(raised.value)
    assert API_KEY not in message and VIEWER_KEY not in message
    assert "\n" not in message
    return message


def test_the_first_sync_creates_the_datasource_and_the_five_dashboards(grafana, grafana_settings):
    grafana_settings.GRAFANA_URL = grafana.url
    grafana_settings.GRAFANA_API_KEY = API_KEY

    output = run_sync()

    lines = output.splitlines()
    assert lines[0] == "datasource ToolWeaver Prometheus: created"
    dashboards = load_dashboards()
    assert lines[1:6] == [f"dashboard {d['uid']} ({d['title']}): created" for d in dashboards]
    assert lines[6] == f"Grafana at {grafana.url}: data source created; 5 dashboards (5 created)"

    expected_calls = [("GET", "/api/org"), ("GET", f"/api/datasources/uid/{DATASOURCE_UID}"),
                      ("POST", "/api/datasources")]
    for dashboard in dashboards:
        expected_calls += [("GET", f"/api/dashboards/uid/{dashboard['uid']}"), ("POST", "/api/dashboards/db")]
    assert grafana.calls() == expected_calls
    for request in grafana.requests:
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.headers["x-grafana-org-id"] == str(ORG_ID)

    created = grafana.requests[2].body
    assert created == {"uid": DATASOURCE_UID, "name": "ToolWeaver Prometheus", "type": "prometheus",
                       "access": "proxy", "url": "http://prometheus.example:9090", "isDefault": False,
                       "jsonData": {"httpMethod": "POST", "timeInterval": "30s"}}

    saves = [request.body for request in grafana.requests if request.path == "/api/dashboards/db"]
    assert [save["dashboard"]["uid"] for save in saves] == [d["uid"] for d in dashboards]
    for save, source in zip(saves, dashboards, strict=True):
        assert save["overwrite"] is True and "folderUid" not in save
        model = save["dashboard"]
        assert model["id"] is None and "__inputs" not in model and "version" not in model
        assert model["title"] == source["title"] and model["panels"] == source["panels"]
        assert model["refresh"] == "5m"  # GRAFANA_DASHBOARD_REFRESH
        variable = next(v for v in model["templating"]["list"] if v["name"] == "datasource")
        assert variable["current"] == {"selected": True, "text": "ToolWeaver Prometheus", "value": DATASOURCE_UID}
    assert set(grafana.dashboards) == DASHBOARD_UIDS
    assert list(grafana.datasources) == [DATASOURCE_UID]


def test_a_second_sync_updates_in_place(grafana):
    run_sync(url=grafana.url, api_key=API_KEY, folder_uid="tw-folder")
    # An admin made the data source the default and added an option by hand: an update keeps both.
    grafana.datasources[DATASOURCE_UID]["isDefault"] = True
    grafana.datasources[DATASOURCE_UID]["jsonData"]["queryTimeout"] = "60s"
    ids = {uid: stored["dashboard"]["id"] for uid, stored in grafana.dashboards.items()}
    grafana.requests.clear()

    output = run_sync(url=grafana.url, api_key=API_KEY, prometheus_url="http://prometheus.internal:9090")

    assert output.splitlines()[0] == "datasource ToolWeaver Prometheus: updated"
    assert output.count(": updated") == 6 and ": created" not in output
    assert output.splitlines()[-1] == f"Grafana at {grafana.url}: data source updated; 5 dashboards (5 updated)"
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in grafana.calls()
    assert ("POST", "/api/datasources") not in grafana.calls()
    assert list(grafana.datasources) == [DATASOURCE_UID]  # updated, not duplicated
    datasource = grafana.datasources[DATASOURCE_UID]
    assert datasource["url"] == "http://prometheus.internal:9090" and datasource["version"] == 2
    assert datasource["isDefault"] is True
    assert datasource["jsonData"] == {"httpMethod": "POST", "timeInterval": "30s", "queryTimeout": "60s"}

    assert set(grafana.dashboards) == DASHBOARD_UIDS  # still five, by uid
    for uid, stored in grafana.dashboards.items():
        assert stored["version"] == 2 and stored["dashboard"]["id"] == ids[uid]
        assert stored["folderUid"] == "tw-folder"  # kept where the first sync put them, without --folder-uid
    saves = [request.body for request in grafana.requests if request.path == "/api/dashboards/db"]
    assert all(save["folderUid"] == "tw-folder" for save in saves)


def test_dry_run_sends_nothing_and_prints_the_plan(grafana):
    output = run_sync("--dry-run", url=grafana.url, api_key=API_KEY, folder_uid="tw-folder")

    assert grafana.requests == []
    lines = output.splitlines()
    assert lines[0] == f"dry run: nothing is sent to Grafana at {grafana.url} (org {ORG_ID})"
    assert lines[1] == ("datasource ToolWeaver Prometheus: would create or update (uid toolweaver-prometheus, "
                        "Prometheus at http://prometheus.example:9090)")
    for dashboard in load_dashboards():
        assert (f"dashboard {dashboard['uid']} ({dashboard['title']}): would create or update "
                f"({len(dashboard['panels'])} panels, folder tw-folder)") in lines
    assert lines[-1].startswith("dry run: would create or update 1 data source and 5 dashboards")


def test_a_wrong_api_key_is_a_clear_401(grafana):
    message = sync_error(url=grafana.url, api_key="glsa_wrong_key_0000000000")

    assert message.startswith("Grafana refused the API key (401)")
    assert "check GRAFANA_API_KEY" in message and "glsa_wrong_key" not in message
    assert grafana.calls() == [("GET", "/api/org")]  # nothing was changed


def test_a_key_without_write_permission_is_a_clear_403(grafana):
    message = sync_error(url=grafana.url, api_key=VIEWER_KEY)

    assert message.startswith("Grafana refused creating the data source (403)")
    assert "lacks permission" in message and "Admin" in message
    assert grafana.datasources == {} and grafana.dashboards == {}


def test_a_server_that_is_not_grafana_is_a_clear_404():
    not_grafana = start_http_receiver(default=404)
    try:
        message = sync_error(url=not_grafana.base_url, api_key=API_KEY)
    finally:
        not_grafana.stop()

    assert message == f"Grafana answered 404 to GET /api/org: is GRAFANA_URL ({not_grafana.base_url}) a Grafana server?"


def test_a_server_answering_something_else_than_json_is_named():
    not_grafana = start_http_receiver(default=200)  # answers "ok"
    try:
        message = sync_error(url=not_grafana.base_url, api_key=API_KEY)
    finally:
        not_grafana.stop()

    assert message == (f"GET /api/org did not answer a JSON object: is GRAFANA_URL ({not_grafana.base_url}) a "
                       "Grafana server?")


def test_connection_refused_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    message = sync_error(url=url, api_key=API_KEY)

    assert message == f"cannot reach Grafana at {url}: Connection refused"


def test_a_key_of_another_org_is_refused_before_any_change(grafana):
    message = sync_error(url=grafana.url, api_key=API_KEY, org_id=ORG_ID + 1)

    assert message.startswith("Grafana refused the API key (401)")
    assert grafana.calls() == [("GET", "/api/org")]


def test_a_datasource_name_taken_by_another_datasource_is_explained(grafana):
    grafana.datasources["hand-made"] = {"uid": "hand-made", "name": "ToolWeaver Prometheus", "id": 99,
                                        "version": 1, "readOnly": False}

    message = sync_error(url=grafana.url, api_key=API_KEY)

    assert message.startswith("Grafana answered 409 to creating the data source (POST /api/datasources)")
    assert "set GRAFANA_DATASOURCE_NAME" in message


def test_missing_url_or_key_is_one_clear_line(grafana_settings):
    with pytest.raises(CommandError, match="^GRAFANA_URL is not set: set it"):
        run_sync()
    grafana_settings.GRAFANA_URL = "http://localhost:3000"
    with pytest.raises(CommandError, match="^GRAFANA_API_KEY is not set: create a service account token"):
        run_sync()
    with pytest.raises(CommandError, match="^GRAFANA_URL must be an http:// or https:// URL"):
        run_sync(url="localhost:3000", api_key=API_KEY)


def test_a_broken_dashboard_file_stops_the_sync_before_any_request(grafana, tmp_path):
    (tmp_path / "bad.json").write_text('{"uid": "x", "title": "X", "panels": [{"title": "P", "targets": []}]}')

    message = sync_error(url=grafana.url, api_key=API_KEY, dashboards_dir=str(tmp_path))

    assert message == "bad.json: panel 'P' has no unit (fieldConfig.defaults.unit)"
    assert grafana.requests == []


def test_a_provisioned_datasource_is_left_as_is(grafana):
    grafana.datasources[DATASOURCE_UID] = {"uid": DATASOURCE_UID, "name": "Provisioned Prometheus", "id": 7,
                                           "type": "prometheus", "url": "http://p:9090", "version": 1,
                                           "readOnly": True}

    output = run_sync(url=grafana.url, api_key=API_KEY)

    assert output.splitlines()[0] == "datasource Provisioned Prometheus: left as is (provisioned in Grafana)"
    assert not any(method == "PUT" for method, _ in grafana.calls())
    assert set(grafana.dashboards) == DASHBOARD_UIDS


def test_a_redirect_is_not_followed_but_explained():
    login = start_http_receiver(default=Reply(302, headers={"Location": "https://grafana.example/login?x=1"}))
    try:
        message = sync_error(url=login.base_url, api_key=API_KEY)
    finally:
        login.stop()

    assert message == (f"Grafana at {login.base_url} redirected GET /api/org to https://grafana.example/login: "
                       "set GRAFANA_URL to the address Grafana is served at")
    assert len(login.requests) == 1


def test_a_grafana_that_does_not_answer_times_out_with_a_clear_error():
    slow = start_http_receiver(default=Reply(200, body=b"{}", delay=5))
    lines: list[str] = []
    try:
        with pytest.raises(GrafanaError) as raised:
            sync(slow.base_url, API_KEY, 1, "ToolWeaver Prometheus", "http://localhost:9090", timeout=0.3,
                 log=lines.append)
    finally:
        slow.stop()

    assert str(raised.value) == f"Grafana at {slow.base_url} did not answer GET /api/org within 0.3 s"
    assert lines == []


def test_manage_py_exits_non_zero_with_one_line_when_grafana_is_not_configured(tmp_path):
    environ = {key: value for key, value in os.environ.items() if not key.startswith("GRAFANA_")}
    environ.update(TOOLWEAVER_DATA_DIR=str(tmp_path), ANALYTICS_DB_PATH=str(tmp_path / "analytics.db"),
                   GRAFANA_URL="http://localhost:3000")
    done = subprocess.run([sys.executable, "manage.py", "grafana_sync"], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "CommandError: GRAFANA_API_KEY is not set: create a service account token (role Admin) in Grafana, "
        "Administration > Users and access > Service accounts, and set it"]
