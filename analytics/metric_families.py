"""The exported metric families, declared once (DESIGN.md, Data flow: Expose).

Every exporter and client backend (Prometheus, OTLP, and the later /metrics and
OTLP exporters) builds its instruments from these declarations, so that names,
help texts, labels and buckets cannot drift apart. The names are seed 001's.
Labels never include ``user_id``: one series per user would grow without bound.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricFamily:
    name: str  # as exposed to Prometheus, suffix included
    help: str
    kind: str  # "counter" | "gauge" | "histogram"
    labels: tuple[str, ...]
    unit: str = ""  # UCUM unit for OpenTelemetry
    buckets: tuple[float, ...] = ()  # histogram bucket upper bounds


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
