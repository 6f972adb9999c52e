"""The built-in source skill.version_regression: 1 when a skill's newest version is significantly worse."""

from datetime import timedelta

import pytest

from alerts.models import AlertIncident, rule_problems
from alerts.sources import Sources, window_ending
from analytics.services.skills import ExecutionItem, record_executions
from tests.alerts.factories import at, evaluate, make_rule, org

pytestmark = pytest.mark.django_db

DAY = 86400


def runs(skill_id, version, count, *, failures=0, latency=100.0, starting=-7200):
    """``count`` executions a second apart from ``starting`` seconds (of the test clock); the first ones fail."""
    return [ExecutionItem(skill_id=skill_id, success=i >= failures, latency_ms=latency, skill_version=version,
                          timestamp=at(starting) + timedelta(seconds=i)) for i in range(count)]


def regression_rule(organization, **fields):
    return make_rule(organization, metric_name="skill.version_regression", condition_operator="gte", threshold=1,
                     window_seconds=DAY, **fields)


def test_a_rule_grouped_by_skill_fires_for_the_skill_whose_newest_version_regresses():
    acme = org()
    record_executions(acme, [
        *runs("parse_json", "1", 200, failures=10, starting=-7200),
        *runs("parse_json", "2", 200, failures=60, starting=-3600),  # 95 % → 70 %
        *runs("csv", "1", 100, starting=-7200),
        *runs("csv", "2", 100, starting=-3600),  # the same
        *runs("slow", "1", 50, latency=100, starting=-7200),
        *runs("slow", "2", 50, latency=300, starting=-3600),  # every execution slower
        *runs("single", "1", 100, failures=100, starting=-3600),  # one version: nothing to compare
    ])
    rule = regression_rule(acme, group_by=["skill_id"])
    evaluate(at(0), rule)
    incidents = {incident.group["skill_id"]: incident for incident in AlertIncident.objects.filter(rule=rule)}
    assert set(incidents) == {"parse_json", "slow"}
    assert incidents["parse_json"].value == 1.0
    values = Sources(at(0)).fetch("skill.version_regression", org=acme, window=window_ending(at(0), DAY), tags={},
                                  group_by=["skill_id"], with_percentiles=False)
    assert {value.group["skill_id"]: value.value for value in values} == {"parse_json": 1.0, "csv": 0.0, "slow": 1.0}


def test_a_rule_on_one_skill_fires_only_when_that_skill_regresses_and_resolves_when_it_recovers():
    acme = org()
    record_executions(acme, [*runs("parse_json", "1", 200, failures=10, starting=-7200),
                             *runs("parse_json", "2", 200, failures=10, starting=-3600)])
    rule = regression_rule(acme, tags={"skill_id": "parse_json"})
    evaluate(at(0), rule)
    assert not AlertIncident.objects.exists()
    # Version 3 goes out and fails half the time.
    record_executions(acme, runs("parse_json", "3", 100, failures=50, starting=60))
    evaluate(at(600), rule)
    incident = AlertIncident.objects.get(rule=rule)
    assert (incident.status, incident.value) == ("open", 1.0)
    # Version 4 fixes it: the newest version is no worse than 3.
    record_executions(acme, runs("parse_json", "4", 100, starting=700))
    evaluate(at(1200), rule)
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_another_orgs_regression_does_not_fire_an_org_rule():
    acme, globex = org("acme"), org("globex")
    record_executions(globex, [*runs("parse_json", "1", 200, failures=10, starting=-7200),
                               *runs("parse_json", "2", 200, failures=100, starting=-3600)])
    record_executions(acme, runs("parse_json", "1", 200, starting=-7200))
    rule = regression_rule(acme)  # no tag, no group_by: any of the org's skills
    evaluate(at(0), rule)
    assert not AlertIncident.objects.exists()
    theirs = regression_rule(globex)
    evaluate(at(0), theirs)
    assert AlertIncident.objects.get().rule_id == theirs.pk


def test_the_source_takes_only_the_skill_id_tag():
    def problems(**fields):
        return rule_problems(metric_name="skill.version_regression", labels={}, threshold=1,
                             **{"tags": {}, "group_by": [], **fields})

    assert problems() == {}
    assert problems(tags={"skill_id": "parse_json"}) == {}
    assert problems(group_by=["skill_id"]) == {}
    assert "tags" in problems(tags={"host": "a"})
    assert "group_by" in problems(group_by=["skill_id", "host"])
