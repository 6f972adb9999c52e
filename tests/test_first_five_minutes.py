"""What a new user meets first (issue 12): JSON errors on API paths in every mode, offline API docs, `/`,
django-prometheus's request and database metrics, a demo that stays on this machine, and documents
(README, .env.example) that say what works.
"""

from __future__ import annotations

import json
import random
import re
import shlex
import socket
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.staticfiles import finders
from django.core.signals import got_request_exception
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, include, path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.client import BACKEND_NAMES
from analytics.platform.collectors import DemoContext
from monitoring import demo
from monitoring.models import Service
from monitoring.services.checks import HttpCheck

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1/analytics/"

# --- A URLconf for the server-error tests: the project's URLs plus two API views that fail ------------------

SECRET_MESSAGE = "kaboom: the database password is hunter2"


def failing_django_view(request):
    raise RuntimeError(SECRET_MESSAGE)


class FailingApiView(APIView):
    permission_classes = []
    authentication_classes = []

    def get(self, request):
        raise RuntimeError(SECRET_MESSAGE)


def ok_view(request):
    return HttpResponse("fine")


urlpatterns = [
    path("api/v1/analytics/test-failures/django", failing_django_view, name="test-failing-django"),
    path("api/v1/analytics/test-failures/drf", FailingApiView.as_view(), name="test-failing-drf"),
    path("not-api/test-failures/django", failing_django_view, name="test-failing-outside-api"),
    path("", include("toolweaver_site.urls")),
]
handler404 = "analytics.platform.errors.json_not_found"
handler500 = "analytics.platform.errors.json_server_error"


@pytest.fixture
def failing_urls(settings):
    settings.ROOT_URLCONF = __name__


# --- 1. API paths answer JSON, DEBUG on or off ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG", "no-DEBUG"])
@pytest.mark.parametrize("url", [
    API + "no-such-endpoint",
    API + "alerts/rules/abc",  # <int:pk> does not match: Django's resolver, not the view, says 404
    API + "alerts/incidents/1.5/acknowledge",
    "/api/nothing-here",
])
def test_an_unknown_api_path_or_a_non_integer_id_answers_the_json_404(settings, personas, debug, url):
    settings.DEBUG = debug
    response = personas.member.client.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}
    assert b"URLconf" not in response.content and b"urlpatterns" not in response.content


@pytest.mark.django_db
def test_outside_the_api_debug_keeps_djangos_own_404_page(settings, client):
    settings.DEBUG = True
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG", "no-DEBUG"])
@pytest.mark.parametrize("view", ["django", "drf"])
def test_a_server_error_on_an_api_path_answers_json_without_a_traceback(settings, failing_urls, debug, view, caplog):
    settings.DEBUG = debug
    signalled = []

    def receiver(sender, request, **kwargs):
        signalled.append(request.path)

    got_request_exception.connect(receiver)
    try:
        response = Client(raise_request_exception=False).get(f"{API}test-failures/{view}",
                                                             HTTP_ACCEPT="text/html,*/*")
    finally:
        got_request_exception.disconnect(receiver)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Internal server error."}
    body = response.content.decode()
    assert "Traceback" not in body and "hunter2" not in body and "failing" not in body
    # The error is still reported: Django signalled it and logged it with its traceback.
    assert signalled == [f"{API}test-failures/{view}"]
    logged = [record for record in caplog.records if record.name == "django.request" and record.levelname == "ERROR"]
    assert any(record.exc_info and SECRET_MESSAGE in str(record.exc_info[1]) for record in logged)


@pytest.mark.django_db
def test_a_server_error_outside_the_api_keeps_djangos_debug_page(settings, failing_urls):
    settings.DEBUG = True
    response = Client(raise_request_exception=False).get("/not-api/test-failures/django", HTTP_ACCEPT="text/html")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_request_django_refuses_on_an_api_path_answers_the_api_400_shape(settings):
    response = Client().get(API + "me", HTTP_HOST="evil.invalid")  # DisallowedHost: Django's own 400 page
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"errors": {"request": ["Bad request."]}}


@pytest.mark.django_db
def test_drf_answers_are_left_alone(personas):
    """A DRF view's answer is the API's own: JSON, or the browsable API's page when a browser asks for it."""
    as_json = personas.member.get("alerts/rules/999999")
    assert as_json.status_code == 404 and isinstance(as_json, Response)
    assert as_json["Content-Type"] == "application/json" and set(as_json.json()) == {"detail"}
    in_a_browser = personas.staff.get("alerts/rules/999999", HTTP_ACCEPT="text/html")
    assert in_a_browser.status_code == 404 and isinstance(in_a_browser, Response)
    assert in_a_browser["Content-Type"].startswith("text/html")  # the browsable API, not a debug page


# --- 2. /api/docs/ is served from the project's own static files ----------------------------------------------


class _References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in {"src", "href"} and value:
                self.urls.append(value)


@pytest.fixture
def static_served_by_whitenoise(settings):
    """WhiteNoise serving from the finders, as under `make run` (DEBUG) and, after collectstatic, in production."""
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.mark.django_db
def test_the_api_docs_reference_no_external_host_and_their_files_are_served(personas, static_served_by_whitenoise):
    staff = personas.staff.client
    page = staff.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "SwaggerUIBundle" in html
    # Nothing is loaded from another host: no absolute or protocol-relative URL anywhere in the page.
    assert not re.findall(r"https?://|(?<![:\w])//[\w.-]+\.\w", html), "the docs page names an external host"
    assert '"validatorUrl": null' in html  # Swagger UI's online validator (swagger.io) is off

    references = _References()
    references.feed(html)
    static = [url for url in references.urls if url.startswith("/static/")]
    assert len(static) == 4  # favicon, stylesheet, bundle, standalone preset
    assert all("drf_spectacular_sidecar/swagger-ui-dist/" in url for url in static)
    assert all(not urlsplit(url).netloc for url in references.urls)
    for url in static:
        response = staff.get(url)
        assert response.status_code == 200, url
        content = b"".join(response.streaming_content)
        # The very file drf-spectacular-sidecar ships, found by the staticfiles finders.
        assert content == Path(finders.find(url.removeprefix("/static/"))).read_bytes(), url
        expected = {"js": "javascript", "css": "text/css", "png": "image/png"}[url.rsplit(".", 1)[-1]]
        assert expected in response["Content-Type"], (url, response["Content-Type"])

    # The schema the page loads answers the same session.
    schema_url = re.search(r'url: "([^"]+)"', html).group(1)
    assert urlsplit(schema_url).netloc == ""
    schema = staff.get(schema_url, {"format": "json"})
    assert schema.status_code == 200
    assert json.loads(schema.content)["info"]["title"] == "ToolWeaver Analytics API"


@pytest.mark.django_db
def test_a_token_holder_reads_the_schema_with_the_authorization_header(personas):
    """README: `curl -H "Authorization: Bearer $TOKEN" .../api/schema/`."""
    anonymous = Client().get("/api/schema/")
    assert anonymous.status_code in {401, 403}
    response = Client().get("/api/schema/", HTTP_AUTHORIZATION=f"Bearer {personas.reader.raw_token}")
    assert response.status_code == 200
    assert b"openapi: 3.1.0" in response.content
    assert b"/api/v1/analytics/me" in response.content


# --- 8. `/` leads to the admin; the admin's "View site" to the API docs -----------------------------------------


@pytest.mark.django_db
def test_the_root_redirects_to_the_admin_and_view_site_leads_to_the_api_docs(personas, client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/", follow=True).redirect_chain[-1][0].startswith("/admin/login/")

    assert admin.site.site_url == "/api/docs/"
    index = personas.staff.client.get("/admin/")
    assert index.status_code == 200
    assert b'href="/api/docs/"' in index.content  # "View site"
    assert personas.staff.client.get("/api/docs/").status_code == 200


# --- 6. django-prometheus: request and database metrics on /metrics -------------------------------------------


def _sample(exposition: str, name: str, **labels) -> float:
    """The value of one sample of the exposition (0.0 when it is absent)."""
    for line in exposition.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name):line.rindex("}")]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_django_prometheus_middleware_wraps_all_the_others():
    assert django_settings.MIDDLEWARE[0] == "django_prometheus.middleware.PrometheusBeforeMiddleware"
    assert django_settings.MIDDLEWARE[-1] == "django_prometheus.middleware.PrometheusAfterMiddleware"


@pytest.mark.django_db
def test_a_request_shows_up_in_the_request_metrics_by_its_url_name(client, personas):
    requests_metric = "django_http_requests_total_by_view_transport_method_total"
    before = client.get("/metrics").content.decode()
    assert client.get("/healthz").status_code == 200
    assert personas.member.get("me").status_code == 200
    after = client.get("/metrics").content.decode()
    for view in ("healthz", "me"):
        labels = {"view": view, "method": "GET", "transport": "http"}
        assert _sample(after, requests_metric, **labels) == _sample(before, requests_metric, **labels) + 1, view
    responses = "django_http_responses_total_by_status_view_method_total"
    assert _sample(after, responses, status="200", view="healthz", method="GET") >= 1


@pytest.mark.django_db
def test_database_queries_show_up_in_the_database_metrics(client, personas):
    vendor = "sqlite" if django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") else "postgresql"
    assert django_settings.DATABASES["default"]["ENGINE"].startswith("django_prometheus.db.backends.")
    before = _sample(client.get("/metrics").content.decode(), "django_db_execute_total", alias="default",
                     vendor=vendor)
    assert personas.member.get("me").status_code == 200  # reads the token and its org
    after = _sample(client.get("/metrics").content.decode(), "django_db_execute_total", alias="default",
                    vendor=vendor)
    assert after > before


def _patterns(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            yield prefix + str(pattern.pattern), pattern


def test_every_url_pattern_of_the_project_is_named():
    """django-prometheus labels requests with the view name; Django's admin names its own (bar two internals)."""
    unnamed = [route for route, pattern in _patterns(get_resolver().url_patterns)
               if not pattern.name and not route.startswith("admin/")]
    assert unnamed == []


# --- 9. The demo stays on this machine --------------------------------------------------------------------------

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _target_host(spec: dict) -> str | None:
    """The host a demo service's check reaches, or None when it reaches none of its own (database, function)."""
    target = spec.get("target") or ""
    kind = spec["check_kind"]
    if kind == Service.CheckKind.HTTP or "://" in target:
        return urlsplit(target).hostname
    if kind == Service.CheckKind.TCP:
        return target.rpartition(":")[0].strip("[]")
    return None


def _is_loopback(host: str) -> bool:
    return host in LOOPBACK or all(info[4][0].startswith("127.") or info[4][0] == "::1"
                                   for info in socket.getaddrinfo(host, None))


@pytest.mark.django_db
def test_no_demo_service_targets_a_host_outside_this_machine():
    context = DemoContext(days=2, now=timezone.now(), rng=random.Random(3), log=lambda message: None)
    demo.seed(context)
    for service in Service.objects.all():
        host = _target_host({"target": service.target, "check_kind": service.check_kind})
        assert host is None or _is_loopback(host), (service.name, service.target)
    website = Service.objects.get(name="example-website")
    assert website.target == f"http://127.0.0.1:{django_settings.TOOLWEAVER_PORT}/healthz"


@pytest.mark.django_db
def test_the_demo_checks_the_port_make_run_serves_and_moves_an_old_public_target(settings):
    Service.objects.create(name="example-website", service_type=Service.Type.EXTERNAL,
                           check_kind=Service.CheckKind.HTTP, target=demo.LEGACY_WEBSITE_TARGET,
                           body_keyword="Example Domain")
    settings.TOOLWEAVER_HOST = "0.0.0.0"
    settings.TOOLWEAVER_PORT = 8765
    demo.seed(DemoContext(days=1, now=timezone.now(), rng=random.Random(3), log=lambda message: None))
    website = Service.objects.get(name="example-website")
    assert (website.target, website.body_keyword) == ("http://127.0.0.1:8765/healthz", '"ok"')


@pytest.mark.django_db(transaction=True)
def test_the_demo_http_check_passes_against_the_platforms_own_healthz(live_server, settings):
    settings.TOOLWEAVER_PORT = int(urlsplit(live_server.url).port)
    spec = next(spec for spec in demo.demo_services() if spec["check_kind"] == Service.CheckKind.HTTP)
    service = Service(**{**spec, "timeout_seconds": 5})
    check = HttpCheck(service)
    check.validate()
    check.run()  # raises CheckFailed when the status or the body keyword is not what the demo expects


# --- 7. .env.example says what exists ---------------------------------------------------------------------------


def test_env_example_lists_every_backend_and_every_wandb_setting():
    text = (ROOT / ".env.example").read_text()
    line = next(line for line in text.splitlines() if line.startswith("ANALYTICS_BACKEND="))
    listed = set(re.findall(r"\b(sqlite|db|prometheus|otlp|wandb|http)\b", line.split("#", 1)[1]))
    assert listed == set(BACKEND_NAMES)
    for variable in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_NAME", "WANDB_MODE"):
        assert re.search(rf"^# {variable}=", text, flags=re.M), variable
    assert "not available yet" not in text.lower()


# --- 3. README commands run after `make run` / `make test` as written -------------------------------------------

VENV_PROGRAMS = ("python", "python3", "celery", "gunicorn", "pytest", "ruff", "uv", "pip")


def readme_commands() -> list[str]:
    """Every shell command of the README: lines of its bash blocks and the code spans that run a program."""
    readme = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S):
        commands += [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", readme, flags=re.S))
    commands += [span for span in spans if re.match(r"(\S+=\S+ )*(\.venv/bin/|make |manage\.py|python|celery|"
                                                     r"gunicorn|pytest|source )", span)]
    return commands


def test_every_readme_command_names_the_venvs_programs_by_path():
    commands = readme_commands()
    assert len(commands) >= 12
    for command in commands:
        for part in re.split(r"\$\(|\||&&|;", command):
            words = [word for word in shlex.split(part.replace("[", "").replace("]", "")) if "=" not in word]
            if not words:
                continue
            program = words[0]
            assert program not in VENV_PROGRAMS and program != "manage.py", command
            if program.startswith(".venv/bin/"):
                assert (ROOT / program).exists(), command
                if words[1:2] == ["manage.py"]:
                    assert words[2] in _management_commands(), command


def _management_commands() -> set[str]:
    from django.core.management import get_commands

    return set(get_commands())


def test_the_readme_names_the_seed_001_classes_and_every_backend():
    readme = (ROOT / "README.md").read_text()
    assert "from analytics import OTLPMetrics, PrometheusMetrics, SkillAnalytics" in readme
    assert "ANALYTICS_BACKEND: sqlite (default) | db | prometheus | otlp | wandb" in readme
    assert "not available yet" not in readme
