"""Analytics' part of ``manage.py export``: metric events and skill executions (analytics/platform/data_export.py)."""

from analytics.models import MetricEvent, SkillExecution
from analytics.platform.data_export import CHUNK_SIZE, ExportStream


def _in_window(queryset, window, org):
    queryset = queryset.filter(timestamp__gte=window.start, timestamp__lt=window.end)
    return queryset.filter(org=org) if org is not None else queryset


def metric_events(window, org):
    events = _in_window(MetricEvent.objects.all(), window, org).order_by("timestamp", "id")
    return events.values_list(
        "timestamp", "org__slug", "series__name", "series__metric_type", "series__unit", "series__source",
        "series__tags", "value", "event_id",
    ).iterator(chunk_size=CHUNK_SIZE)


def skill_executions(window, org):
    executions = _in_window(SkillExecution.objects.all(), window, org).order_by("timestamp", "id")
    return executions.values_list(
        "timestamp", "org__slug", "skill_id", "skill_version", "user_id", "success", "latency_ms", "error_type",
        "event_id",
    ).iterator(chunk_size=CHUNK_SIZE)


EXPORTS = [
    ExportStream(
        name="events",
        description="Raw metric events: one row per recorded value, with its series' name, type, unit, "
                    "source and tags (org empty: the platform scope).",
        columns=("timestamp", "org", "metric_name", "metric_type", "unit", "source", "tags", "value", "event_id"),
        rows=metric_events,
    ),
    ExportStream(
        name="executions",
        description="Skill executions (the skill_usage table): one row per execution.",
        columns=("timestamp", "org", "skill_id", "skill_version", "user_id", "success", "latency_ms", "error_type",
                 "event_id"),
        rows=skill_executions,
    ),
]
