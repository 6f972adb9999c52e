"""The exported metric families, declared once (DESIGN.md, Data flow: Expose).

Every exporter and client backend (the client's Prometheus and OTLP backends, the
server's /metrics and its OTLP push) builds its instruments from these
declarations, so that names, help texts, labels and buckets cannot drift apart.
The skill names are seed 001's. Labels never include ``user_id``: one series per
user would grow without bound. Monitoring and alerts declare their own families
in their ``exposition`` modules, with the same class.

The classes (``MetricFamily``, ``Exposed``, ``Sample``) live in the floor
(analytics/platform/metric_family.py), which declares its own ingest counters.
"""

from __future__ import annotations

from analytics.platform.metric_family import Exposed, MetricFamily, Sample, prometheus_metric

__all__ = ["Exposed", "MetricFamily", "Sample", "prometheus_metric"]  # declared in the floor, used here


SKILL_LABELS = ("skill_id", "org_id")
LATENCY_BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0)

SKILL_EXECUTIONS = MetricFamily("toolweaver_skill_executions_total", "Skill executions.", "counter", SKILL_LABELS)
SKILL_SUCCESSES = MetricFamily("toolweaver_skill_success_total", "Successful skill executions.", "counter",
                               SKILL_LABELS)
SKILL_FAILURES = MetricFamily("toolweaver_skill_failures_total", "Failed skill executions.", "counter", SKILL_LABELS)
SKILL_LATENCY = MetricFamily("toolweaver_skill_latency_milliseconds", "Skill execution time in milliseconds.",
                             "histogram", SKILL_LABELS, unit="ms", buckets=LATENCY_BUCKETS_MS)
SKILL_RATING = MetricFamily("toolweaver_skill_rating", "The latest user rating of the skill (1-5 stars).", "gauge",
                            SKILL_LABELS)
SKILL_HEALTH_SCORE = MetricFamily("toolweaver_skill_health_score", "Skill health score (0-100).", "gauge",
                                  SKILL_LABELS)

SKILL_FAMILIES = (SKILL_EXECUTIONS, SKILL_SUCCESSES, SKILL_FAILURES, SKILL_LATENCY, SKILL_RATING, SKILL_HEALTH_SCORE)

# Exposed by the server only (read from the store): the client backends have no such figures.
SKILL_RATINGS = MetricFamily("toolweaver_skill_ratings", "Current user ratings of the skill (one per user).", "gauge",
                             SKILL_LABELS)
SKILL_INSTALLS = MetricFamily("toolweaver_skill_installs_total", "Skill installs.", "counter", SKILL_LABELS)
SKILL_DEPRECATED = MetricFamily("toolweaver_skill_deprecated", "1 when the skill is marked deprecated.", "gauge",
                                ("skill_id",))
PLATFORM_USERS = MetricFamily("toolweaver_platform_users", "Users known to the org (newest computed day).", "gauge",
                              ("org_id",))
PLATFORM_ACTIVE_USERS = MetricFamily("toolweaver_platform_active_users", "Users active on the newest computed day.",
                                     "gauge", ("org_id",))
PLATFORM_NEW_USERS = MetricFamily("toolweaver_platform_new_users", "Users first seen on the newest computed day.",
                                  "gauge", ("org_id",))
PLATFORM_AGENTS = MetricFamily("toolweaver_platform_agents", "Agents known to the org (newest computed day).",
                               "gauge", ("org_id",))
PLATFORM_ACTIVE_AGENTS = MetricFamily("toolweaver_platform_active_agents",
                                      "Agents active on the newest computed day.", "gauge", ("org_id",))
METRIC_SERIES = MetricFamily("toolweaver_metric_series", "Metric series stored.", "gauge", ("org_id",))
ROLLUP_LAG = MetricFamily("toolweaver_rollup_lag_seconds",
                          "How far the rollup tier's complete part trails now (0: never built yet).", "gauge",
                          ("tier",), unit="s")
EXPOSITION_DROPPED = MetricFamily("toolweaver_exposition_series_dropped",
                                  "Label sets left out of the family (PROMETHEUS_MAX_SERIES_PER_FAMILY).", "gauge",
                                  ("family",))
