"""Alerting's part of ``manage.py export``: incidents triggered in the window (analytics/platform/data_export.py)."""

from alerts.models import AlertIncident
from analytics.platform.data_export import CHUNK_SIZE, ExportStream

INCIDENT_COLUMNS = (
    "id", "triggered_at", "org", "rule_id", "rule_name", "group", "status", "severity", "value", "threshold",
    "condition", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "silenced_until", "notes",
)


def incidents(window, org):
    found = AlertIncident.objects.filter(triggered_at__gte=window.start, triggered_at__lt=window.end)
    if org is not None:
        found = found.filter(org=org)
    fields = [("org__slug" if column == "org" else column) for column in INCIDENT_COLUMNS]
    return found.order_by("triggered_at", "id").values_list(*fields).iterator(chunk_size=CHUNK_SIZE)


EXPORTS = [
    ExportStream(
        name="incidents",
        description="Alert incidents triggered in the window, with their current status and who acted "
                    "(org empty: a platform-wide rule's).",
        columns=INCIDENT_COLUMNS,
        rows=incidents,
    ),
]
