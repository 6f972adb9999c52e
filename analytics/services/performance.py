"""API performance from the request-tracking metric ``api.response_time`` (API.md, GET performance)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from analytics.platform.contracts import ResponseContract
from analytics.platform.scope import ALL_ORGS, ScopeLike
from analytics.platform.windows import Window
from analytics.services import metrics_query as query

RESPONSE_TIME_METRIC = "api.response_time"


class EndpointPerformance(ResponseContract):
    endpoint: str | None
    method: str | None
    requests: int
    error_rate: float
    p50: float | None
    p95: float | None
    p99: float | None


class Performance(ResponseContract):
    start: datetime
    end: datetime
    results: list[EndpointPerformance]


def performance_summary(window: Window, *, org: ScopeLike = ALL_ORGS) -> Performance:
    """Per endpoint and method: requests, error_rate (share of 5xx answers), p50/p95/p99 in ms."""
    errors: dict[tuple, int] = defaultdict(int)
    for group in query.grouped_statistics(RESPONSE_TIME_METRIC, window, ["endpoint", "method", "status"],
                                          org=org, with_percentiles=False):
        if (group.tags["status"] or "").startswith("5"):
            errors[(group.tags["endpoint"], group.tags["method"])] += group.count
    rows = []
    for group in query.grouped_statistics(RESPONSE_TIME_METRIC, window, ["endpoint", "method"], org=org):
        key = (group.tags["endpoint"], group.tags["method"])
        rows.append(EndpointPerformance(
            endpoint=key[0], method=key[1], requests=group.count,
            error_rate=errors[key] / group.count if group.count else 0.0,
            p50=group.p50, p95=group.p95, p99=group.p99,
        ))
    return Performance(start=window.start, end=window.end, results=rows)
