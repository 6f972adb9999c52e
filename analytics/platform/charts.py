"""The specs of the admin's charts (drawn by toolweaver_site/static/toolweaver/charts.js with plotly.js).

A page's view builds a spec from the same service functions as the API, puts it in its context, and the
template includes ``admin/toolweaver/chart.html`` with it. No drawing code here: just the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

Point = tuple[datetime | str, float | None]


def _x(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


def series(name: str, points: Iterable[Point], colors: list[str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "points": [[_x(x), y] for x, y in points]}
    if colors is not None:
        entry["colors"] = colors
    return entry


def chart(*all_series: dict[str, Any], empty: str, kind: str = "line", unit: str = "",
          thresholds: Iterable[tuple[str, float]] = (), bands: Iterable[tuple[datetime, datetime | None, str]] = (),
          categories: bool = False, height: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """``empty``: what the page says when there is no point, and what to do about it.

    ``bands``: shaded time spans (an incident: start, end or None while it lasts until ``now``).
    ``categories``: the x values are labels (skills), not times.
    """
    spec: dict[str, Any] = {"kind": kind, "unit": unit, "series": list(all_series), "empty": empty,
                            "thresholds": [{"name": name, "value": value} for name, value in thresholds],
                            "bands": [{"start": _x(start), "end": _x(end or now or start), "label": label}
                                      for start, end, label in bands],
                            "categories": categories}
    if height:
        spec["height"] = height
    return spec


def point_count(spec: dict[str, Any]) -> int:
    """The points the chart draws (what the browser tests expect charts.js to report)."""
    return sum(1 for entry in spec["series"] for _, value in entry["points"] if value is not None)
