"""/metrics shows what the store holds: every execution posted through the API, ratings, installs, health
scores, services and incidents; the same on every scrape; protected by a token when one is set; bounded."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import AlertIncident, AlertRule, IncidentStatus
from analytics.metric_families import LATENCY_BUCKETS_MS
from analytics.models import Skill, SkillExecution, SkillExecutionTotals
from analytics.services.health_score import health_score
from monitoring.models import Service, Status
from tests.alerts.factories import make_rule
from tests.monitoring.factories import make_service

pytestmark = pytest.mark.django_db


def scrape(client=None, **headers) -> dict:
    """{(sample name, {label: value} as sorted tuple): value} of one GET /metrics."""
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content[:300]
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def execution(skill_id, success=True, latency_ms=100.0, **extra):
    return {"skill_id": skill_id, "success": success, "latency_ms": latency_ms, **extra}


def test_executions_posted_through_the_api_are_counted_exactly(personas):
    latencies = [3.0, 5.0, 7.5, 120.0, 120.0, 99_000.0]
    batch = [execution("parse_json", success=i != 2, latency_ms=ms, event_id=f"e{i}")
             for i, ms in enumerate(latencies)]
    assert personas.member.post("skills/executions", batch).status_code == 201
    assert personas.member.post("skills/executions", batch).json() == {"accepted": 0, "duplicates": 6}

    samples = scrape()
    labels = {"skill_id": "parse_json", "org_id": "acme"}
    assert value(samples, "toolweaver_skill_executions_total", **labels) == 6
    assert value(samples, "toolweaver_skill_success_total", **labels) == 5
    assert value(samples, "toolweaver_skill_failures_total", **labels) == 1
    assert value(samples, "toolweaver_skill_latency_milliseconds_count", **labels) == 6
    assert value(samples, "toolweaver_skill_latency_milliseconds_sum", **labels) == pytest.approx(sum(latencies))
    cumulative = {bound: value(samples, "toolweaver_skill_latency_milliseconds_bucket", le=str(bound), **labels)
                  for bound in (5.0, 10.0, 100.0, 250.0, 60000.0)}
    # le includes its bound: 5.0 is in the first bucket; 99 s is only in +Inf.
    assert cumulative == {5.0: 2, 10.0: 3, 100.0: 3, 250.0: 5, 60000.0: 5}
    assert value(samples, "toolweaver_skill_latency_milliseconds_bucket", le="+Inf", **labels) == 6
    assert len([key for key in samples if key[0] == "toolweaver_skill_latency_milliseconds_bucket"]) == \
        len(LATENCY_BUCKETS_MS) + 1
    assert not any("user_id" in dict(key[1]) for key in samples)
    def store_families(samples):
        return {key: val for key, val in samples.items() if key[0].startswith("toolweaver_skill_")}

    assert store_families(scrape()) == store_families(samples)  # the next scrape shows the same


def test_counters_are_per_org_and_do_not_drop_when_retention_removes_old_executions(personas, settings):
    personas.member.post("skills/executions", [execution("s", event_id="old"), execution("s")])
    personas.outsider.post("skills/executions", [execution("s", success=False)])
    old = timezone.now() - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS + 5)
    SkillExecution.objects.filter(event_id="old").update(timestamp=old)  # as if it had been stored long ago
    before = scrape()
    call_command("cleanup_old_data", verbosity=0)
    assert SkillExecution.objects.filter(org=personas.org).count() == 1
    after = scrape()
    for org, executions in (("acme", 2), ("globex", 1)):
        for samples in (before, after):
            assert value(samples, "toolweaver_skill_executions_total", skill_id="s", org_id=org) == executions


def test_ratings_installs_and_the_computed_health_score(personas):
    personas.member.post("skills/executions", [execution("rated", latency_ms=50.0) for _ in range(12)])
    personas.member.post("skills/ratings", [{"skill_id": "rated", "rating": 5, "user_id": "ann"},
                                            {"skill_id": "rated", "rating": 2, "user_id": "bob",
                                             "timestamp": (timezone.now() - timedelta(hours=1)).isoformat()},
                                            {"skill_id": "rated", "rating": 4, "user_id": "bob"}])
    personas.member.post("skills/installs", [{"skill_id": "rated"}, {"skill_id": "rated"}])
    Skill.objects.filter(skill_id="rated").update(deprecated=True)

    samples = scrape()
    labels = {"skill_id": "rated", "org_id": "acme"}
    assert value(samples, "toolweaver_skill_rating", **labels) == 4.5  # ann's 5 and bob's newer 4
    assert value(samples, "toolweaver_skill_ratings", **labels) == 2
    assert value(samples, "toolweaver_skill_installs_total", **labels) == 2
    expected = health_score("rated", org=personas.org).score
    assert value(samples, "toolweaver_skill_health_score", **labels) == pytest.approx(expected, abs=0.01)
    assert value(samples, "toolweaver_skill_deprecated", skill_id="rated") == 1


def test_services_incidents_and_rule_states(personas):
    up = make_service("payments")
    down = make_service("search")
    Service.objects.filter(pk=up.pk).update(status=Status.HEALTHY, last_response_time_ms=42.0)
    Service.objects.filter(pk=down.pk).update(status=Status.UNHEALTHY, consecutive_failures=4)
    rule = make_rule(name="cpu", severity="critical")
    now = timezone.now()
    for host, status in (("a", IncidentStatus.OPEN), ("b", IncidentStatus.ACKNOWLEDGED),
                         ("c", IncidentStatus.RESOLVED)):
        AlertIncident.objects.create(rule=rule, rule_name="cpu", group_key=f'{{"host": "{host}"}}',
                                     severity="critical", status=status, threshold=80, triggered_at=now)

    samples = scrape()
    assert value(samples, "toolweaver_service_up", service="payments") == 1
    assert value(samples, "toolweaver_service_up", service="search") == 0
    assert value(samples, "toolweaver_service_status", service="search", status="unhealthy") == 1
    assert value(samples, "toolweaver_service_status", service="search", status="healthy") == 0
    assert value(samples, "toolweaver_service_consecutive_failures", service="search") == 4
    assert value(samples, "toolweaver_service_response_time_seconds", service="payments") == 0.042
    assert value(samples, "toolweaver_service_sla_target_ratio", service="payments") == up.sla_target / 100
    assert value(samples, "toolweaver_alert_incidents_open", severity="critical") == 2
    assert value(samples, "toolweaver_alert_incidents_open", severity="info") == 0
    enabled_rules = AlertRule.objects.filter(enabled=True).count()  # cpu, and the services' built-in rules
    assert value(samples, "toolweaver_alert_rules", state="inactive") == enabled_rules


def test_the_ingest_counters_count_accepted_duplicate_and_rejected_items(personas):
    def counted(samples, **labels):
        return value(samples, "toolweaver_ingest_items_total", **labels) or 0

    before = scrape()
    batch = [execution("c", event_id="a"), execution("c", event_id="b")]
    personas.member.post("skills/executions", batch)
    personas.member.post("skills/executions", batch)
    assert personas.member.post("skills/executions", [execution("c"), {"skill_id": "c"}]).status_code == 400
    after = scrape()
    kind = "skill-executions"
    assert counted(after, kind=kind, outcome="accepted") - counted(before, kind=kind, outcome="accepted") == 2
    assert counted(after, kind=kind, outcome="duplicate") - counted(before, kind=kind, outcome="duplicate") == 2
    rejected = "toolweaver_ingest_rejected_total"
    assert (value(after, rejected, kind=kind) or 0) - (value(before, rejected, kind=kind) or 0) == 2


def test_a_metrics_token_protects_the_scrape(settings):
    settings.PROMETHEUS_METRICS_TOKEN = "scrape-secret-0123456789"
    client = Client()
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "Basic c2NyYXBl"}):
        response = client.get("/metrics", **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"scrape-secret" not in response.content
    samples = scrape(client, HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789")
    assert value(samples, "toolweaver_alert_incidents_open", severity="critical") == 0


def test_a_family_keeps_its_busiest_label_sets_and_counts_the_rest(personas, settings):
    settings.PROMETHEUS_MAX_SERIES_PER_FAMILY = 2
    for skill_id, count in (("busy", 5), ("medium", 3), ("quiet", 1)):
        personas.member.post("skills/executions", [execution(skill_id, success=False) for _ in range(count)])
    samples = scrape()
    kept = {dict(labels)["skill_id"] for name, labels in samples if name == "toolweaver_skill_executions_total"}
    assert kept == {"busy", "medium"}
    # The families ranked with executions keep the same skills, even where "quiet" would weigh as much.
    for name in ("toolweaver_skill_success_total", "toolweaver_skill_failures_total",
                 "toolweaver_skill_latency_milliseconds_count"):
        assert {dict(labels)["skill_id"] for family, labels in samples if family == name} == kept
    dropped = "toolweaver_exposition_series_dropped"
    assert value(samples, dropped, family="toolweaver_skill_executions_total") == 1
    assert value(samples, dropped, family="toolweaver_skill_latency_milliseconds") == 1


def test_the_migration_counts_the_executions_stored_before_the_totals(personas):
    from importlib import import_module

    from django.apps import apps

    personas.member.post("skills/executions", [execution("m", latency_ms=ms, success=ms < 500)
                                               for ms in (1.0, 30.0, 30.0, 900.0)])
    expected = SkillExecutionTotals.objects.values().get()
    SkillExecutionTotals.objects.all().delete()
    import_module("analytics.migrations.0008_skill_execution_totals").count_stored_executions(apps, None)
    counted = SkillExecutionTotals.objects.values().get()
    assert {k: v for k, v in counted.items() if k != "id"} == {k: v for k, v in expected.items() if k != "id"}
    assert counted["latency_buckets"] == [1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]


def test_health_scores_are_computed_once_per_period(personas, settings):
    from datetime import UTC, datetime

    from analytics import exposition

    settings.PROMETHEUS_HEALTH_SCORE_SECONDS = 60
    personas.member.post("skills/executions", [execution("cached", latency_ms=50.0) for _ in range(12)])

    def score(now):
        families = {item.family.name: item for item in exposition.exposed_families(now)}
        return {sample.labels: sample.value for sample in families["toolweaver_skill_health_score"].samples}

    start = datetime.fromtimestamp(timezone.now().timestamp() // 60 * 60 + 60, UTC)  # the next minute
    first = score(start + timedelta(seconds=1))
    personas.member.post("skills/executions", [execution("cached", success=False) for _ in range(12)])
    assert score(start + timedelta(seconds=59)) == first  # the same period: reused
    later = score(start + timedelta(seconds=61))
    assert later[("cached", "acme")] < first[("cached", "acme")]  # the next period sees the failures


def test_health_scores_are_the_snapshot_jobs_while_it_is_fresh(personas, settings):
    from analytics import exposition
    from analytics.models import Organization
    from analytics.services.health_snapshots import SNAPSHOT_MAX_AGE, compute_health_snapshots

    settings.PROMETHEUS_HEALTH_SCORE_SECONDS = 60
    acme = Organization.objects.get(slug="acme")

    def score(now):
        families = {item.family.name: item for item in exposition.exposed_families(now)}
        return {sample.labels: sample.value for sample in families["toolweaver_skill_health_score"].samples}

    personas.member.post("skills/executions", [execution("snapshotted", latency_ms=50.0) for _ in range(12)])
    # Later than every execution, half way through a minute (see the stale scrape below).
    job_time = datetime.fromtimestamp(timezone.now().timestamp() // 60 * 60 + 90, UTC)
    compute_health_snapshots(now=job_time)
    snapshot_score = health_score("snapshotted", org=acme, now=job_time).score
    personas.member.post("skills/executions", [execution("snapshotted", success=False) for _ in range(12)])
    personas.member.post("skills/executions", [execution("after_the_job", latency_ms=80.0) for _ in range(5)])

    scraped = score(job_time + timedelta(seconds=30))
    assert scraped[("snapshotted", "acme")] == round(snapshot_score, 2)  # the job's row, not the data since
    # A skill the snapshot lacks is computed as of the snapshot's moment.
    assert scraped[("after_the_job", "acme")] == round(health_score("after_the_job", org=acme, now=job_time).score, 2)

    compute_health_snapshots(now=job_time + timedelta(minutes=1))  # the next run sees the failures
    second_run_score = score(job_time + timedelta(seconds=90))[("snapshotted", "acme")]
    assert second_run_score < snapshot_score

    # No run since: the snapshot goes stale and the scrape computes the scores of its own period.
    personas.member.post("skills/executions", [execution("snapshotted", success=False) for _ in range(12)])
    # Its period starts while the second run's snapshot was still fresh: the scrape must not read it either.
    stale = job_time + timedelta(minutes=1) + SNAPSHOT_MAX_AGE + timedelta(seconds=10)
    period_start = datetime.fromtimestamp(stale.timestamp() // 60 * 60, UTC)
    stale_score = score(stale)[("snapshotted", "acme")]
    assert stale_score < second_run_score
    assert stale_score == round(health_score("snapshotted", org=acme, now=period_start).score, 2)
