"""API performance from the request-tracking metric ``api.response_time`` (API.md, GET performance)."""

from __future__ import annotations

from collections import defaultdict

from analytics.platform.windows import Window
from analytics.services import metrics_query as query

RESPONSE_TIME_METRIC = "api.response_time"


def performance_summary(window: Window, *, org=query.ALL_ORGS) -> list[dict]:
    """Per endpoint and method: requests, error_rate (share of 5xx answers), p50/p95/p99 in ms."""
    errors: dict[tuple, int] = defaultdict(int)
    for group in query.grouped_statistics(RESPONSE_TIME_METRIC, window, ["endpoint", "method", "status"],
                                          org=org, with_percentiles=False):
        if (group.tags["status"] or "").startswith("5"):
            errors[(group.tags["endpoint"], group.tags["method"])] += group.count
    rows = []
    for group in query.grouped_statistics(RESPONSE_TIME_METRIC, window, ["endpoint", "method"], org=org):
        key = (group.tags["endpoint"], group.tags["method"])
        rows.append({
            "endpoint": key[0], "method": key[1], "requests": group.count,
            "error_rate": errors[key] / group.count if group.count else 0.0,
            "p50": group.p50, "p95": group.p95, "p99": group.p99,
        })
    return rows
