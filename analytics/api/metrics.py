"""Metrics endpoints (API.md, Metrics): record, batch, list, statistics, time series, performance."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, RootModel, model_validator

from analytics.platform.contracts import InvalidParameter, OrgQuery, Printable, TaggedWindowQuery, WindowQuery, endpoint
from analytics.platform.conventions import ApiView
from analytics.services import metrics_query
from analytics.services.metrics_ingest import IngestResult, MetricItem, ingest_metric_items
from analytics.services.performance import Performance, performance_summary

MAX_GROUP_BY = 5


class StatisticsQuery(TaggedWindowQuery, OrgQuery):
    group_by: list[Annotated[str, Printable(64)]] = Field(default_factory=list, max_length=MAX_GROUP_BY,
                                          description="Tag keys (repeatable): statistics per distinct value.")


class TimeSeriesQuery(TaggedWindowQuery, OrgQuery):
    interval: metrics_query.Interval = Field("1h", description="Bucket size; buckets are aligned to UTC "
                                                               "multiples of it.")
    aggregate: metrics_query.Aggregate = Field("avg", description="What each point is; rate is the sum per second.")

    @model_validator(mode="after")
    def _not_too_many_points(self):
        problem = metrics_query.too_many_points(self.window(), metrics_query.INTERVALS[self.interval])
        if problem:
            raise InvalidParameter("interval", problem)
        return self


class PerformanceQuery(WindowQuery, OrgQuery):
    pass


class StatisticsResponse(RootModel[metrics_query.Stats | metrics_query.GroupedStats]):
    """Statistics over the window, or per group with ``group_by``."""


class MetricIngestView(ApiView):
    """``POST metrics/record`` and ``POST metrics/batch``: one item, an array, or ``{"events": [...]}``."""

    # A pydantic dataclass item: endpoint(items=) is annotated for RequestContract models only.
    @endpoint(items=MetricItem, response=IngestResult, status_code=201,
              summary="Record metric events (one, an array, or {events: [...]}; up to 10,000)")
    def post(self, request, org, items):
        return ingest_metric_items(org, items)


class MetricListView(ApiView):
    @endpoint(query=OrgQuery, response=metrics_query.MetricInfo, paginated=True,
              summary="Known metric names with type, unit and last seen")
    def get(self, request, query):
        return metrics_query.list_metrics(org=self.read_org())


class MetricStatisticsView(ApiView):
    @endpoint(query=StatisticsQuery, response=StatisticsResponse,
              summary="count, sum, avg, min, max, p50, p95, p99 over a window (per group with group_by)")
    def get(self, request, name, query):
        window, tags, org = query.window(), query.tag_filters(), self.read_org()
        if query.group_by:
            return metrics_query.grouped_statistics_body(name, window, query.group_by, org=org, tags=tags)
        return metrics_query.statistics(name, window, org=org, tags=tags)


class MetricTimeSeriesView(ApiView):
    @endpoint(query=TimeSeriesQuery, response=metrics_query.TimeSeries,
              summary="One point per UTC-aligned bucket; empty buckets are null")
    def get(self, request, name, query):
        return metrics_query.time_series(name, query.window(), interval=query.interval, aggregate=query.aggregate,
                                         org=self.read_org(), tags=query.tag_filters())


class PerformanceView(ApiView):
    @endpoint(query=PerformanceQuery, response=Performance,
              summary="Per endpoint: requests, error rate, p50/p95/p99 (ms)")
    def get(self, request, query):
        return performance_summary(query.window(), org=self.read_org())
