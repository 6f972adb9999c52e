"""The charting library ships with the platform: plotly.js from the installed package, no CDN."""

from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.management import call_command

from analytics.platform.charts import chart, point_count, series


def test_plotly_and_the_charts_helper_are_static_files(tmp_path, settings):
    found = finders.find("vendor/plotly/plotly.min.js")
    assert found and Path(found).stat().st_size > 1_000_000
    assert finders.find("toolweaver/charts.js")
    settings.STATIC_ROOT = str(tmp_path)
    call_command("collectstatic", "--noinput", verbosity=0)
    assert (tmp_path / "vendor" / "plotly" / "plotly.min.js").exists()


def test_a_chart_spec_counts_the_points_it_draws():
    spec = chart(series("p95", [("2026-12-01T00:00:00Z", 3.0), ("2026-12-01T01:00:00Z", None)]),
                 series("avg", [("2026-12-01T00:00:00Z", 1.0)]), empty="No data.", unit="ms",
                 thresholds=[("threshold", 2.5)])
    assert point_count(spec) == 2
    assert spec["thresholds"] == [{"name": "threshold", "value": 2.5}]
