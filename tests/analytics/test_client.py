"""The client of API.md (seed 000): every method on each backend it applies to.

The store backends (``sqlite`` and its alias ``db``) run on the test run's database,
so the PostgreSQL run covers ``db`` on PostgreSQL. The OTLP backend's methods are
tested against a real receiver in tests/integration/test_client_otlp.py.
"""

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.db import connections
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import analytics
from analytics import UnsupportedOperation, create_analytics_client
from analytics.client.fanout import FanoutClient
from analytics.client.prometheus import PrometheusBackend, ServerPrometheusBackend
from analytics.client.store import StoreBackend
from analytics.metric_families import SKILL_FAMILIES
from analytics.models import Organization, SkillExecution, SkillHealthScore, SkillInstall, SkillRating
from analytics.services.skills import ExecutionItem, record_executions

pytestmark = pytest.mark.django_db

READS = [("get_skill_usage", ("s",)), ("compute_health_score", ("s",)), ("get_leaderboard", ())]


@pytest.fixture(params=["sqlite", "db"])
def store(request):
    return create_analytics_client(request.param)


def unique(prefix="skill"):
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --- Choosing a backend -----------------------------------------------------------------------


def test_the_backend_comes_from_the_argument_or_analytics_backend(settings):
    assert isinstance(create_analytics_client("sqlite"), StoreBackend)
    assert create_analytics_client("db").name == "db"
    settings.ANALYTICS_BACKEND = "prometheus"
    assert isinstance(create_analytics_client(), ServerPrometheusBackend)  # inside Django (this test run)
    settings.ANALYTICS_BACKEND = ""
    assert create_analytics_client().name == "sqlite"


@pytest.mark.parametrize("name", ["mysql", "sqlite,influx", "", " , "])
def test_unknown_backends_raise_value_error_listing_the_valid_ones(name):
    with pytest.raises(ValueError, match="sqlite, db, prometheus, otlp"):
        create_analytics_client(name)


def test_wandb_is_a_backend_of_its_own(monkeypatch, tmp_path):
    # The backend's runs and their files are tested in tests/integration/test_client_wandb.py.
    import wandb

    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    wandb.teardown()  # wandb reads its environment when its first run of the process starts
    client = create_analytics_client("wandb")
    assert client.name == "wandb"
    assert client.health_check() == {"backend": "wandb", "healthy": True,
                                     "detail": "WANDB_MODE=disabled: nothing is logged"}
    client.close()
    wandb.teardown()


def test_a_comma_separated_list_fans_out_and_sqlite_db_is_one_store(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    client = create_analytics_client("sqlite, wandb")
    assert isinstance(client, FanoutClient)
    assert [backend.name for backend in client.backends] == ["sqlite", "wandb"]
    client.close()
    assert isinstance(create_analytics_client("sqlite,db"), StoreBackend)
    # Inside Django, prometheus records into the store that /metrics shows: with sqlite, still one store.
    assert type(create_analytics_client("sqlite,prometheus")) is StoreBackend


def test_seed_001s_skill_analytics_is_the_store_backend():
    assert analytics.SkillAnalytics is StoreBackend
    assert analytics.SkillAnalytics().get_skill_usage() == []


# --- The store backends ------------------------------------------------------------------------


def test_seed_000_sqlite_example(store):
    store.record_skill_usage(skill_id="parse_json", user_id="user_123", org_id="org_456", success=True,
                             latency_ms=145.5)
    store.rate_skill(skill_id="parse_json", rating=5, org_id="org_456")
    usage = store.get_skill_usage(skill_id="parse_json")
    assert usage["execution_count"] == 1
    assert usage["avg_latency_ms"] == 145.5
    assert usage["rating_avg"] == 5
    row = SkillExecution.objects.get()
    assert (row.skill_id, row.user_id, row.org.slug, row.success) == ("parse_json", "user_123", "org_456", True)


def test_record_skill_execution_and_get_skill_usage_agree_with_numpy(store):
    latencies = [12.0, 30.5, 31.0, 90.0, 150.0, 151.0, 600.0]
    for index, latency in enumerate(latencies):
        store.record_skill_execution("ocr", index % 3 != 0, latency, user_id=f"u{index}", org_id="acme")
    usage = store.get_skill_usage("ocr", org_id="acme")
    assert (usage["execution_count"], usage["success_count"], usage["failure_count"]) == (7, 4, 3)
    assert usage["success_rate"] == pytest.approx(4 / 7)
    for key, percentile in (("p50_latency_ms", 50), ("p95_latency_ms", 95), ("p99_latency_ms", 99)):
        assert usage[key] == pytest.approx(np.percentile(latencies, percentile), rel=0.01)
    assert store.get_skill_usage("ocr", org_id="globex") is None
    assert store.get_skill_usage("never_seen") is None


def test_record_skill_usage_defaults_to_the_default_org_and_success(store, settings):
    settings.ANALYTICS_DEFAULT_ORG = "house"
    store.record_skill_usage("s")
    row = SkillExecution.objects.get()
    assert (row.org.slug, row.success, row.latency_ms, row.user_id) == ("house", True, 0.0, None)


def test_ratings_rate_skill_and_record_skill_rating_replace_a_users_rating(store):
    store.rate_skill("s", 2, org_id="acme", user_id="ann")
    store.record_skill_rating("s", 4, user_id="ann", org_id="acme")
    store.record_skill_rating("s", 1)  # anonymous, default org: replaces nothing
    assert SkillRating.objects.filter(replaced_at__isnull=True).count() == 2
    assert store.get_skill_usage("s", org_id="acme")["rating_avg"] == 4
    assert store.get_skill_usage("s")["rating_count"] == 2


def test_record_skill_install_counts_installs(store):
    store.record_skill_install("s", user_id="ann", org_id="acme")
    store.record_skill_install("s", org_id="acme")
    assert SkillInstall.objects.count() == 2
    assert store.get_skill_usage("s")["install_count"] == 2


def test_update_and_compute_health_score(store):
    assert store.compute_health_score("s") is None
    for _ in range(5):
        store.record_skill_execution("s", True, 20.0, org_id="acme")
    computed = store.compute_health_score("s")
    assert 0 < computed <= 100
    store.update_health_score("s", 33.0, org_id="acme")
    assert SkillHealthScore.objects.get().source == "client"
    assert store.compute_health_score("s") == 33.0
    assert store.compute_health_score("s", org_id="acme") == 33.0
    assert store.get_skill_usage("s")["health_score"] == 33.0
    store.record_skill_execution("s", True, 20.0, org_id="acme")  # newer data supersedes it
    assert store.compute_health_score("s") not in (None, 33.0)
    assert store.compute_health_score("s", org_id="nobody") is None


def test_get_skill_usage_lists_every_skill_and_takes_windows(store, personas):
    now = timezone.now()
    record_executions(personas.org, [
        ExecutionItem(skill_id="old", success=True, latency_ms=1.0, timestamp=now - timedelta(days=40)),
        ExecutionItem(skill_id="week", success=True, latency_ms=1.0, timestamp=now - timedelta(days=5)),
        ExecutionItem(skill_id="hour", success=True, latency_ms=1.0, timestamp=now - timedelta(minutes=30)),
    ])
    default = {usage["skill_id"]: usage["execution_count"] for usage in store.get_skill_usage()}
    assert default == {"week": 1, "hour": 1}  # the default window is the last 30 days
    assert store.get_skill_usage("old")["execution_count"] == 0
    assert store.get_skill_usage("old", days=60)["execution_count"] == 1
    assert store.get_skill_usage("week", hours=2)["execution_count"] == 0
    start = (now - timedelta(days=6)).isoformat()
    assert store.get_skill_usage("week", start=start, end=now)["execution_count"] == 1
    assert [usage["skill_id"] for usage in store.get_skill_usage(hours=1)] == ["hour"]
    assert store.get_skill_usage(org_id="acme", days=1)[0]["skill_id"] == "hour"
    with pytest.raises(ValueError, match="hours"):
        store.get_skill_usage("week", hours=1, days=1)


def test_get_leaderboard_usage(store):
    for skill_id, runs in (("a", 1), ("b", 3), ("c", 2)):
        for _ in range(runs):
            store.record_skill_usage(skill_id, org_id="acme")
    board = store.get_leaderboard()
    assert [(row["rank"], row["skill_id"], row["score"]) for row in board] == [(1, "b", 3), (2, "c", 2), (3, "a", 1)]
    assert [row["skill_id"] for row in store.get_leaderboard(type="usage", limit=2)] == ["b", "c"]
    assert store.get_leaderboard(org_id="elsewhere") == []
    with pytest.raises(ValueError, match="type"):
        store.get_leaderboard(type="popularity")
    with pytest.raises(ValueError, match="limit"):
        store.get_leaderboard(limit=0)


@pytest.mark.parametrize("call, field", [
    (lambda c: c.record_skill_usage("executions"), "skill_id"),
    (lambda c: c.record_skill_usage(""), "skill_id"),
    (lambda c: c.record_skill_execution("s", "yes", 1.0), "success"),
    (lambda c: c.record_skill_execution("s", True, -5), "latency_ms"),
    (lambda c: c.rate_skill("s", 6), "rating"),
    (lambda c: c.record_skill_rating("s", 3.5), "rating"),
    (lambda c: c.record_skill_install("a b"), "skill_id"),
    (lambda c: c.update_health_score("s", 101), "score"),
    (lambda c: c.record_skill_usage("s", org_id="no spaces allowed"), "org_id"),
])
def test_bad_writes_raise_value_error_naming_the_field_and_store_nothing(store, call, field):
    with pytest.raises(ValueError, match=field):
        call(store)
    assert not SkillExecution.objects.exists()
    assert not Organization.objects.filter(slug="no spaces allowed").exists()


def test_store_health_check_config_summary_and_push(store, settings, monkeypatch):
    check = store.health_check()
    assert check["backend"] == store.name
    assert check["healthy"] is True
    assert connections["default"].vendor in check["detail"]
    settings.OTLP_TOKEN = "glc_secret_token"
    settings.WANDB_API_KEY = "wandb-secret"
    settings.GRAFANA_API_KEY = "grafana-secret"
    monkeypatch.setitem(connections["default"].settings_dict, "PASSWORD", "db-secret")
    monkeypatch.setitem(connections["default"].settings_dict, "ENGINE", "django.db.backends.postgresql")
    summary = store.get_config_summary()
    assert summary["backend"] == store.name
    assert (summary["otlp_token"], summary["wandb_api_key"], summary["grafana_api_key"]) == ("***",) * 3
    assert ":***@" in summary["database_url"]
    assert not any(secret in str(summary) for secret in ("glc_secret", "wandb-secret", "grafana-secret", "db-secret"))
    assert store.push() is True


# --- The Prometheus backends ---------------------------------------------------------------------


def scrape(client) -> dict[tuple, float]:
    """The server's /metrics, as {(sample name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def registry_value(name: str, skill_id: str, org_id: str = "acme", **labels) -> float | None:
    """What a plain-process ``PrometheusBackend`` recorded, read from prometheus_client's registry."""
    return REGISTRY.get_sample_value(name, {"skill_id": skill_id, "org_id": org_id, **labels})


def test_inside_django_prometheus_records_into_the_store_that_metrics_exposes(client):
    backend = create_analytics_client("prometheus")
    skill = unique()
    labels = (("org_id", "acme"), ("skill_id", skill))
    backend.record_skill_usage(skill, user_id="user_123", org_id="acme", success=True, latency_ms=40.0)
    backend.record_skill_execution(skill, False, 700.0, user_id="user_9", org_id="acme")
    backend.record_skill_rating(skill, 5, user_id="ann", org_id="acme")
    backend.update_health_score(skill, 87.5, org_id="acme")
    assert SkillExecution.objects.filter(skill_id=skill).count() == 2
    samples = scrape(client)
    assert samples[("toolweaver_skill_executions_total", labels)] == 2
    assert samples[("toolweaver_skill_failures_total", labels)] == 1
    assert samples[("toolweaver_skill_latency_milliseconds_bucket", (("le", "50.0"), *labels))] == 1
    assert samples[("toolweaver_skill_rating", labels)] == 5
    assert samples[("toolweaver_skill_health_score", labels)] == 87.5
    assert backend.get_skill_usage(skill)["execution_count"] == 2  # a store: it reads too
    check = backend.health_check()
    assert check["healthy"] is True and check["detail"].endswith("exposed by the server's /metrics")


def test_the_plain_process_backend_records_seed_001_names_with_skill_and_org_labels():
    backend = PrometheusBackend()
    skill = unique()
    backend.record_skill_usage(skill, user_id="user_123", org_id="acme", success=True, latency_ms=40.0)
    backend.record_skill_execution(skill, False, 700.0, user_id="user_9", org_id="acme")
    backend.rate_skill(skill, 4, org_id="acme")
    backend.record_skill_rating(skill, 5, user_id="ann", org_id="acme")
    backend.record_skill_install(skill, org_id="acme")
    backend.update_health_score(skill, 87.5, org_id="acme")
    assert registry_value("toolweaver_skill_executions_total", skill) == 2
    assert registry_value("toolweaver_skill_success_total", skill) == 1
    assert registry_value("toolweaver_skill_failures_total", skill) == 1
    assert registry_value("toolweaver_skill_latency_milliseconds_count", skill) == 2
    assert registry_value("toolweaver_skill_latency_milliseconds_sum", skill) == 740.0
    assert registry_value("toolweaver_skill_latency_milliseconds_bucket", skill, le="50.0") == 1
    assert registry_value("toolweaver_skill_rating", skill) == 5
    assert registry_value("toolweaver_skill_health_score", skill) == 87.5
    assert REGISTRY.get_sample_value("toolweaver_skill_executions_total",
                                     {"skill_id": skill, "org_id": "acme", "user_id": "user_123"}) is None
    assert not SkillExecution.objects.exists()  # a push backend stores nothing


def test_a_plain_process_backend_created_inside_django_does_not_repeat_the_store_families(client):
    PrometheusBackend().record_skill_usage("in_memory_only", org_id="acme")
    text = client.get("/metrics").content.decode()
    assert text.count("# TYPE toolweaver_skill_executions_total counter") == 1
    assert "in_memory_only" not in text


def test_plain_process_families_are_registered_once_and_reused():
    first, second = PrometheusBackend(), PrometheusBackend()
    assert first._metrics is second._metrics
    assert len(first._metrics) == len(SKILL_FAMILIES)


def test_plain_process_reads_raise_unsupported_operation_naming_the_backend():
    backend = PrometheusBackend()
    for method, args in READS:
        with pytest.raises(UnsupportedOperation, match="prometheus"):
            getattr(backend, method)(*args)
    assert issubclass(UnsupportedOperation, NotImplementedError)


def test_plain_process_health_check_config_summary_and_push(settings):
    settings.OTLP_TOKEN = "glc_secret"
    backend = PrometheusBackend()
    check = backend.health_check()
    assert check == {"backend": "prometheus", "healthy": True, "detail": check["detail"]}
    assert f"{len(SKILL_FAMILIES)} metric families registered" in check["detail"]
    summary = backend.get_config_summary()
    assert summary["backend"] == "prometheus"
    assert summary["otlp_token"] == "***"
    assert backend.push() is True


@pytest.mark.parametrize("make", [PrometheusBackend, lambda: create_analytics_client("prometheus")])
def test_prometheus_validates_like_the_store(make):
    backend = make()
    with pytest.raises(ValueError, match="rating"):
        backend.rate_skill("s", 0)
    with pytest.raises(ValueError, match="skill_id"):
        backend.record_skill_usage("ratings")


# --- Fan-out ------------------------------------------------------------------------------------


def test_fanout_writes_to_every_backend_and_reads_from_the_store(client):
    fanout = FanoutClient([PrometheusBackend(), create_analytics_client("sqlite")])
    skill = unique()
    fanout.record_skill_usage(skill, org_id="acme", latency_ms=10.0)
    fanout.record_skill_execution(skill, False, 20.0, org_id="acme")
    fanout.rate_skill(skill, 3, org_id="acme")
    fanout.record_skill_rating(skill, 5, user_id="u", org_id="acme")
    fanout.record_skill_install(skill, org_id="acme")
    fanout.update_health_score(skill, 50, org_id="acme")
    assert registry_value("toolweaver_skill_executions_total", skill) == 2
    assert registry_value("toolweaver_skill_health_score", skill) == 50
    samples = scrape(client)  # the store's side, on the server's /metrics
    assert samples[("toolweaver_skill_executions_total", (("org_id", "acme"), ("skill_id", skill)))] == 2
    usage = fanout.get_skill_usage(skill)
    assert (usage["execution_count"], usage["rating_count"], usage["install_count"]) == (2, 2, 1)
    assert fanout.compute_health_score(skill) == 50
    assert fanout.get_leaderboard()[0]["skill_id"] == skill
    check = fanout.health_check()
    assert check["backend"] == "prometheus,sqlite"
    assert check["healthy"] is True
    assert [part["backend"] for part in check["backends"]] == ["prometheus", "sqlite"]
    assert fanout.get_config_summary()["backends"] == ["prometheus", "sqlite"]
    assert fanout.push() is True


def test_fanout_validates_before_any_backend_records(client):
    fanout = FanoutClient([create_analytics_client("sqlite"), PrometheusBackend()])
    skill = unique()
    with pytest.raises(ValueError, match="latency_ms"):
        fanout.record_skill_execution(skill, True, -1)
    assert not SkillExecution.objects.exists()
    assert registry_value("toolweaver_skill_executions_total", skill) is None


def test_fanout_of_push_only_backends_cannot_read():
    fanout = FanoutClient([PrometheusBackend(), PrometheusBackend()])
    for method, args in READS:
        with pytest.raises(UnsupportedOperation):
            getattr(fanout, method)(*args)


def test_an_execution_may_name_the_skill_version_that_ran(store):
    skill = unique()
    store.record_skill_execution(skill, True, 12.0, org_id="acme", skill_version="2.1.0")
    store.record_skill_usage(skill, org_id="acme", skill_version="2.2.0")
    assert sorted(SkillExecution.objects.filter(skill_id=skill).values_list("skill_version", flat=True)) == \
        ["2.1.0", "2.2.0"]
    with pytest.raises(ValueError, match="skill_version"):
        store.record_skill_execution(skill, True, 1.0, skill_version="x" * 65)
