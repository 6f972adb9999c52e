"""Grafana dashboards as code: the JSON of ``grafana/dashboards`` and ``manage.py grafana_sync`` (docs/grafana.md).

    load_dashboards(directory=GRAFANA_DASHBOARDS_DIR) -> [dashboard]      (validated; DashboardFileError names the file)
    dashboard_metric_names(dashboards) -> {metric name}                   (as written in the PromQL)
    expression_metric_names(expr) -> {metric name}                        (of one PromQL expression)
    sync(url, api_key, org_id, datasource_name, prometheus_url, ...) -> SyncResult

``sync`` creates or updates one Prometheus data source (fixed uid ``DATASOURCE_UID``) and every dashboard (by
its uid) through Grafana's HTTP API; running it twice changes nothing but versions. Every failure is a
:class:`GrafanaError` with one line saying what to fix; the API key never appears in a message.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

GRAFANA_DASHBOARDS_DIR = Path(settings.BASE_DIR) / "grafana" / "dashboards"
DATASOURCE_UID = "toolweaver-prometheus"
# grafana/prometheus.yml scrapes this often; Grafana's $__rate_interval is derived from it.
SCRAPE_INTERVAL = "30s"
SYNC_MESSAGE = "manage.py grafana_sync (ToolWeaver Analytics)"
DEFAULT_TIMEOUT = 10.0


class GrafanaError(Exception):
    """Grafana could not be synced; the message is one line saying what to fix."""


class DashboardFileError(GrafanaError):
    """A dashboard file of ``grafana/dashboards`` is not a usable dashboard."""


# --- Dashboard files ---------------------------------------------------------------------------------


def load_dashboards(directory: Path | str = GRAFANA_DASHBOARDS_DIR) -> list[dict[str, Any]]:
    """Every ``*.json`` of ``directory`` (by file name), each checked: a uid, a title, every panel a title and a unit,
    every query an expression; uids unique."""
    directory = Path(directory)
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise DashboardFileError(f"no dashboard files (*.json) in {directory}")
    dashboards = []
    file_of_uid: dict[str, str] = {}
    for path in paths:
        dashboard = _load_dashboard(path)
        uid = dashboard["uid"]
        if uid in file_of_uid:
            raise DashboardFileError(f"{path.name}: uid {uid!r} is already the uid of {file_of_uid[uid]}")
        file_of_uid[uid] = path.name
        dashboards.append(dashboard)
    return dashboards


def _load_dashboard(path: Path) -> dict[str, Any]:
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise DashboardFileError(f"{path.name}: cannot read it: {error}") from None
    except json.JSONDecodeError as error:
        raise DashboardFileError(f"{path.name}: not valid JSON: {error}") from None
    if not isinstance(dashboard, dict):
        raise DashboardFileError(f"{path.name}: a dashboard is a JSON object, not {type(dashboard).__name__}")
    for key in ("uid", "title"):
        if not isinstance(dashboard.get(key), str) or not dashboard[key].strip():
            raise DashboardFileError(f"{path.name}: the dashboard has no {key}")
    if not isinstance(dashboard.get("panels"), list) or not dashboard["panels"]:
        raise DashboardFileError(f"{path.name}: the dashboard has no panels")
    for number, panel in enumerate(_panels(dashboard), start=1):
        _check_panel(path.name, number, panel)
    return dashboard


def _check_panel(file_name: str, number: int, panel: Any) -> None:
    if not isinstance(panel, dict):
        raise DashboardFileError(f"{file_name}: panel {number} is not a JSON object")
    title = panel.get("title")
    if not isinstance(title, str) or not title.strip():
        raise DashboardFileError(f"{file_name}: panel {number} (id {panel.get('id')}) has no title")
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    if not isinstance(unit, str) or not unit.strip():
        raise DashboardFileError(f"{file_name}: panel {title!r} has no unit (fieldConfig.defaults.unit)")
    targets = panel.get("targets")
    if not isinstance(targets, list) or not targets:
        raise DashboardFileError(f"{file_name}: panel {title!r} has no queries (targets)")
    for target in targets:
        if not isinstance(target, dict) or not isinstance(target.get("expr"), str) or not target["expr"].strip():
            raise DashboardFileError(f"{file_name}: panel {title!r} has a query without a PromQL expression (expr)")


def _panels(dashboard: dict[str, Any]) -> Iterable[Any]:
    """The dashboard's panels, with those inside collapsed rows."""
    for panel in dashboard.get("panels") or []:
        yield panel
        if isinstance(panel, dict):
            yield from panel.get("panels") or []


# --- Metric names of PromQL ----------------------------------------------------------------------------

# Identifiers of PromQL that are not metric names when they are not followed by "(" (functions always are).
_PROMQL_KEYWORDS = frozenset({
    "and", "or", "unless", "atan2", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
    "bool", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio", "inf", "nan", "start", "end",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', re.DOTALL)
_COMMENT = re.compile(r"#[^\n]*")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]+)"')
_LABEL_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")  # [5m], [$__rate_interval], subqueries [1h:5m]
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*|\d[\w.]*")  # an identifier, or a number or duration (skipped)
_FUNCTION_CALL = re.compile(r"\s*\(")


def expression_metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects, as written (``x_bucket`` stays ``x_bucket``).

    Not a full parser: it drops what cannot be a metric name — strings, comments, Grafana variables, label
    matchers, ranges and subqueries, label lists of by/without/on/ignoring/group_left/group_right, numbers and
    durations — then keeps the identifiers that are neither a function call nor a keyword.
    ``{__name__="x"}`` counts as ``x``.
    """
    names = set(_NAME_MATCHER.findall(expression))
    text = _STRING.sub(" ", expression)
    text = _COMMENT.sub(" ", text)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = _LABEL_MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    for token in _TOKEN.finditer(text):
        word = token.group()
        if word[0].isdigit() or word.lower() in _PROMQL_KEYWORDS:
            continue
        if _FUNCTION_CALL.match(text, token.end()):
            continue
        names.add(word)
    return names


_LABEL_VALUES = re.compile(r"^\s*label_values\s*\((.*),\s*[A-Za-z_]\w*\s*\)\s*$", re.DOTALL)
# Variable queries that name no metric: label_names(), label_values(label), metrics(regex).
_NO_METRIC_QUERY = re.compile(r"^\s*(label_names|label_values|metrics)\s*\(")


def dashboard_metric_names(dashboards: Iterable[dict[str, Any]]) -> set[str]:
    """Every metric name the dashboards' queries use: each panel's ``targets[].expr``, and the metric of each
    query variable (``label_values(metric, label)``, ``query_result(expr)``), as written in the expressions."""
    names: set[str] = set()
    for dashboard in dashboards:
        for panel in _panels(dashboard):
            for target in panel.get("targets") or []:
                names |= expression_metric_names(target.get("expr") or "")
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable.get("query")
            query = query.get("query", "") if isinstance(query, dict) else query or ""
            label_values = _LABEL_VALUES.match(query)
            if label_values:
                names |= expression_metric_names(label_values.group(1))
            elif not _NO_METRIC_QUERY.match(query):
                names |= expression_metric_names(query)
    return names


# --- Sync --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncAction:
    """What the sync did (or, in a dry run, would do) to one data source or dashboard."""

    kind: str  # "datasource" | "dashboard"
    uid: str
    title: str
    outcome: str  # "created", "updated", "left as is (provisioned in Grafana)", "would create or update"
    detail: str = ""

    def line(self) -> str:
        subject = f"datasource {self.title}" if self.kind == "datasource" else f"dashboard {self.uid} ({self.title})"
        return f"{subject}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class SyncResult:
    grafana: str  # Grafana's address as shown in messages (no credentials)
    dry_run: bool
    actions: list[SyncAction] = field(default_factory=list)

    def summary(self) -> str:
        dashboards = [action for action in self.actions if action.kind == "dashboard"]
        if self.dry_run:
            return (f"dry run: would create or update 1 data source and {len(dashboards)} dashboards in Grafana at "
                    f"{self.grafana}; nothing was sent")
        datasource = next(action for action in self.actions if action.kind == "datasource")
        counts: dict[str, int] = {}
        for action in dashboards:
            counts[action.outcome] = counts.get(action.outcome, 0) + 1
        tally = ", ".join(f"{count} {outcome}" for outcome, count in counts.items())
        return (f"Grafana at {self.grafana}: data source {datasource.outcome}; {len(dashboards)} dashboards"
                f" ({tally})")


def sync(url: str, api_key: str, org_id: int, datasource_name: str, prometheus_url: str, *,
         dashboards: list[dict[str, Any]] | None = None, folder_uid: str | None = None,
         refresh: str | None = None, dry_run: bool = False, log: Callable[[str], object] = print,
         timeout: float = DEFAULT_TIMEOUT) -> SyncResult:
    """Create or update the Prometheus data source and each dashboard in Grafana's org ``org_id``.

    The data source has the fixed uid ``DATASOURCE_UID``; an update keeps what was set on it by hand
    (authentication, default, other options). Dashboards are saved by uid with ``overwrite``, in ``folder_uid``
    when given (else where they already are, the General folder for new ones), their data source variable
    defaulting to this data source. ``dry_run`` sends nothing: it logs the plan. Logs one line per action.
    """
    grafana = _checked_url(url, "GRAFANA_URL")
    _checked_url(prometheus_url, "GRAFANA_PROMETHEUS_URL")
    if dashboards is None:
        dashboards = load_dashboards()
    models = [_dashboard_model(dashboard, datasource_name, refresh) for dashboard in dashboards]
    result = SyncResult(grafana=grafana, dry_run=dry_run)

    def record(action: SyncAction) -> None:
        result.actions.append(action)
        log(action.line())

    if dry_run:
        log(f"dry run: nothing is sent to Grafana at {grafana} (org {org_id})")
        record(SyncAction("datasource", DATASOURCE_UID, datasource_name, "would create or update",
                          f"uid {DATASOURCE_UID}, Prometheus at {_shown_url(prometheus_url)}"))
        folder = f", folder {folder_uid}" if folder_uid else ""
        for model in models:
            record(SyncAction("dashboard", model["uid"], model["title"], "would create or update",
                              f"{sum(1 for _ in _panels(model))} panels{folder}"))
        return result

    client = _GrafanaClient(url, api_key, org_id, timeout)
    client.check_org()
    record(_sync_datasource(client, datasource_name, prometheus_url))
    for model in models:
        record(_sync_dashboard(client, model, folder_uid))
    return result


def datasource_body(name: str, prometheus_url: str) -> dict[str, Any]:
    """The data source as sync creates it."""
    return {"uid": DATASOURCE_UID, "name": name, "type": "prometheus", "access": "proxy", "url": prometheus_url,
            "isDefault": False, "jsonData": {"httpMethod": "POST", "timeInterval": SCRAPE_INTERVAL}}


# What an update keeps of the data source as Grafana has it: whatever an admin set by hand.
_KEPT_DATASOURCE_FIELDS = ("basicAuth", "basicAuthUser", "withCredentials", "isDefault")


def _sync_datasource(client: _GrafanaClient, name: str, prometheus_url: str) -> SyncAction:
    path = f"/api/datasources/uid/{DATASOURCE_UID}"
    existing = client.request("GET", path, "reading the data source", missing_ok=True)
    body = datasource_body(name, prometheus_url)
    if existing is None:
        client.request("POST", "/api/datasources", "creating the data source", body=body,
                       conflict_hint=f"another data source is named {name!r}: rename it, or set "
                                     "GRAFANA_DATASOURCE_NAME to another name")
        return SyncAction("datasource", DATASOURCE_UID, name, "created")
    if existing.get("readOnly"):
        return SyncAction("datasource", DATASOURCE_UID, existing.get("name") or name,
                          "left as is (provisioned in Grafana)")
    body.update({key: existing[key] for key in _KEPT_DATASOURCE_FIELDS if key in existing})
    body["jsonData"] = {**(existing.get("jsonData") or {}), **body["jsonData"]}
    client.request("PUT", path, "updating the data source", body=body,
                   conflict_hint=f"another data source is named {name!r}: rename it, or set "
                                 "GRAFANA_DATASOURCE_NAME to another name")
    return SyncAction("datasource", DATASOURCE_UID, name, "updated")


def _sync_dashboard(client: _GrafanaClient, model: dict[str, Any], folder_uid: str | None) -> SyncAction:
    uid = model["uid"]
    existing = client.request("GET", f"/api/dashboards/uid/{uid}", f"reading dashboard {uid}", missing_ok=True)
    body: dict[str, Any] = {"dashboard": model, "overwrite": True, "message": SYNC_MESSAGE}
    # Without folderUid, Grafana would move an existing dashboard to the General folder.
    folder = folder_uid or ((existing or {}).get("meta") or {}).get("folderUid")
    if folder:
        body["folderUid"] = folder
    client.request("POST", "/api/dashboards/db", f"saving dashboard {uid}", body=body,
                   conflict_hint="another dashboard of the folder has the same title")
    return SyncAction("dashboard", uid, model["title"], "created" if existing is None else "updated")


def _dashboard_model(dashboard: dict[str, Any], datasource_name: str, refresh: str | None) -> dict[str, Any]:
    """The dashboard as sync saves it: no import inputs, no id or version (Grafana goes by the uid), the data
    source variable defaulting to the synced data source."""
    model = copy.deepcopy(dashboard)
    for key in ("__inputs", "__requires", "__elements", "version"):
        model.pop(key, None)
    model["id"] = None
    if refresh:
        model["refresh"] = refresh
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            variable["current"] = {"selected": True, "text": datasource_name, "value": DATASOURCE_UID}
    return model


# --- HTTP --------------------------------------------------------------------------------------------


def _shown_url(url: str) -> str:
    """A URL as messages show it: without user and password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


def _checked_url(url: str, setting: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise GrafanaError(f"{setting} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GrafanaError(f"{setting} must be an http:// or https:// URL, like http://localhost:3000")
    return _shown_url(url)


class _BearerAuth(requests.auth.AuthBase):
    """The API key as a bearer token (an auth object also keeps requests from using ~/.netrc instead)."""

    def __init__(self, api_key: str):
        self.api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.api_key}"
        return request


class _GrafanaClient:
    def __init__(self, url: str, api_key: str, org_id: int, timeout: float):
        self.base = url.rstrip("/")
        self.shown = _shown_url(url)
        self.api_key = api_key
        self.org_id = org_id
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = _BearerAuth(api_key)
        self.session.headers.update({"X-Grafana-Org-Id": str(org_id), "Accept": "application/json",
                                     "User-Agent": "ToolWeaver-Analytics grafana_sync"})

    def check_org(self) -> None:
        """The key works, and for the org of GRAFANA_ORG_ID: before anything is changed."""
        org = self.request("GET", "/api/org", "reading the current organization") or {}
        if org.get("id") != self.org_id:
            raise self.error(f"the API key is for Grafana org {org.get('id')} ({org.get('name')}), not "
                             f"GRAFANA_ORG_ID={self.org_id}: use a key of that org or change GRAFANA_ORG_ID")

    def request(self, method: str, path: str, what: str, *, body: dict[str, Any] | None = None,
                missing_ok: bool = False, conflict_hint: str = "") -> dict[str, Any] | None:
        """Grafana's JSON answer; None for a 404 when ``missing_ok``. Anything else raises GrafanaError."""
        try:
            response = self.session.request(method, self.base + path, json=body, timeout=self.timeout,
                                            allow_redirects=False)
        except requests.Timeout:
            raise self.error(f"Grafana at {self.shown} did not answer {method} {path} within "
                             f"{self.timeout:g} s") from None
        except requests.RequestException as error:
            raise self.error(f"cannot reach Grafana at {self.shown}: {_reason(error)}") from None
        status = response.status_code
        if status == 404 and missing_ok:
            return None
        if status >= 300:
            raise self.error(self._refusal(response, method, path, what, conflict_hint))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise self.error(f"{method} {path} did not answer a JSON object: is GRAFANA_URL ({self.shown}) a "
                             "Grafana server?")
        return answer

    def _refusal(self, response: requests.Response, method: str, path: str, what: str, conflict_hint: str) -> str:
        status = response.status_code
        said = _grafana_message(response)
        said_part = f" ({said})" if said else ""
        if status == 401:
            return (f"Grafana refused the API key (401){said_part}: check GRAFANA_API_KEY (a service account token "
                    f"of org {self.org_id})")
        if status == 403:
            return (f"Grafana refused {what} (403){said_part}: the API key lacks permission; its service "
                    "account needs the Admin role (data sources need Admin, dashboards Editor)")
        if status == 404:
            return f"Grafana answered 404 to {method} {path}: is GRAFANA_URL ({self.shown}) a Grafana server?"
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            target = f" to {_shown_url(location)}" if urlsplit(location).scheme else ""
            return (f"Grafana at {self.shown} redirected {method} {path}{target}: set GRAFANA_URL to the address "
                    "Grafana is served at")
        hint = f": {conflict_hint}" if status in (409, 412) and conflict_hint else ""
        return f"Grafana answered {status} to {what} ({method} {path}){said_part}{hint}"

    def error(self, message: str) -> GrafanaError:
        if len(self.api_key) >= 4:  # never show the key, whatever echoed it
            message = message.replace(self.api_key, "***")
        return GrafanaError(message)


def _grafana_message(response: requests.Response) -> str:
    """Grafana's ``message`` of an error answer, or the start of a non-JSON body, on one line."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("message"), str):
        text = answer["message"]
    elif answer is None and "html" not in response.headers.get("Content-Type", ""):
        text = response.text[:200]
    else:
        text = ""
    return " ".join(text.split())


def _reason(error: BaseException) -> str:
    """The innermost cause of a requests error, e.g. "Connection refused" (requests' own text is a paragraph)."""
    seen: set[int] = set()
    current: BaseException | None = error
    reason = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror
        nested = getattr(current, "reason", None)
        if isinstance(nested, BaseException):
            current = nested
        elif current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
        else:
            current = current.__cause__ or current.__context__
    if reason:
        return reason
    text = str(error)
    return text.rsplit(": ", 1)[-1].rstrip("')\"") if ": " in text else text or type(error).__name__
