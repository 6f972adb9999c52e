"""Metrics endpoints (API.md, Metrics): record, batch, list, statistics, time series, performance."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from analytics.platform.conventions import ApiView, tag_filters_from_params, window_from_params
from analytics.platform.errors import field_error
from analytics.services import metrics_query as query
from analytics.services.metrics_ingest import ingest_metric_items, validate_metric_item
from analytics.services.performance import performance_summary

WINDOW_PARAMS = [
    OpenApiParameter("hours", OpenApiTypes.NUMBER, description="Rolling window ending now (default 24)."),
    OpenApiParameter("days", OpenApiTypes.NUMBER, description="Rolling window ending now."),
    OpenApiParameter("start", OpenApiTypes.DATETIME, description="Window start (ISO-8601, naive = UTC)."),
    OpenApiParameter("end", OpenApiTypes.DATETIME, description="Window end (default now)."),
    OpenApiParameter("org", OpenApiTypes.STR, description="Staff only: the org to read."),
]
TAG_PARAM = OpenApiParameter("tag", OpenApiTypes.STR, many=True, description="key:value, repeatable, ANDed.")


class MetricItemSerializer(serializers.Serializer):
    """Documents one item; validation is ``services.metrics_ingest.validate_metric_item``."""

    metric_name = serializers.CharField(max_length=200)
    value = serializers.FloatField()
    metric_type = serializers.ChoiceField(["counter", "gauge", "histogram", "timer"], default="gauge")
    unit = serializers.CharField(max_length=32, required=False)
    tags = serializers.DictField(child=serializers.CharField(max_length=256), required=False)
    source = serializers.CharField(max_length=100, required=False)
    timestamp = serializers.DateTimeField(required=False)
    event_id = serializers.CharField(max_length=128, required=False)


IngestResultSerializer = inline_serializer(
    "IngestResult", {"accepted": serializers.IntegerField(), "duplicates": serializers.IntegerField()}
)


class StatsSerializer(serializers.Serializer):
    metric_name = serializers.CharField()
    count = serializers.IntegerField()
    sum = serializers.FloatField(allow_null=True)
    avg = serializers.FloatField(allow_null=True)
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    source = serializers.ChoiceField(["raw", "rollup"])


class PointSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    value = serializers.FloatField(allow_null=True)


class TimeSeriesSerializer(serializers.Serializer):
    metric_name = serializers.CharField()
    interval = serializers.CharField()
    aggregate = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    source = serializers.CharField()
    points = PointSerializer(many=True)


class MetricInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    metric_type = serializers.CharField()
    unit = serializers.CharField()
    series = serializers.IntegerField()
    last_seen = serializers.DateTimeField()


class MetricIngestView(ApiView):
    """``POST metrics/record`` and ``POST metrics/batch``: one item, an array, or ``{"events": [...]}``."""

    @extend_schema(request=MetricItemSerializer(many=True), responses={201: IngestResultSerializer},
                   summary="Record metric events (one, an array, or {events: [...]}; up to 10,000)")
    def post(self, request):
        org = self.write_org()
        items = self.validated_batch(validate_metric_item)
        result = ingest_metric_items(org, items)
        return Response(result.as_dict(), status=status.HTTP_201_CREATED)


class MetricListView(ApiView):
    @extend_schema(responses=MetricInfoSerializer(many=True), parameters=WINDOW_PARAMS[-1:],
                   summary="Known metric names with type, unit and last seen")
    def get(self, request):
        rows = [info.__dict__ for info in query.list_metrics(org=self.read_org())]
        return self.paginated(rows, MetricInfoSerializer)


class MetricStatisticsView(ApiView):
    @extend_schema(
        parameters=[*WINDOW_PARAMS, TAG_PARAM, OpenApiParameter("group_by", OpenApiTypes.STR,
                                                                  description="A tag key: statistics per value.")],
        responses=StatsSerializer, summary="count, sum, avg, min, max, p50, p95, p99 over a window",
    )
    def get(self, request, name):
        window = window_from_params(request.query_params)
        tags = tag_filters_from_params(request.query_params)
        group_by = [key for key in request.query_params.getlist("group_by") if key]
        if len(group_by) > 5:
            raise field_error("group_by", "At most 5 keys.")
        if group_by:
            groups = query.grouped_statistics(name, window, group_by, org=self.read_org(), tags=tags)
            return Response({"metric_name": name, **window.as_dict(), "source": "raw",
                             "groups": [group.as_dict() for group in groups]})
        return Response(query.statistics(name, window, org=self.read_org(), tags=tags).as_dict())


class MetricTimeSeriesView(ApiView):
    @extend_schema(
        parameters=[*WINDOW_PARAMS, TAG_PARAM,
                    OpenApiParameter("interval", OpenApiTypes.STR, enum=list(query.INTERVALS), default="1h"),
                    OpenApiParameter("aggregate", OpenApiTypes.STR, enum=query.AGGREGATES, default="avg")],
        responses=TimeSeriesSerializer, summary="One point per UTC-aligned bucket; empty buckets are null",
    )
    def get(self, request, name):
        window = window_from_params(request.query_params)
        tags = tag_filters_from_params(request.query_params)
        interval = request.query_params.get("interval", "1h")
        aggregate = request.query_params.get("aggregate", "avg")
        if interval not in query.INTERVALS:
            raise field_error("interval", f"Must be one of {', '.join(query.INTERVALS)}.")
        if aggregate not in query.AGGREGATES:
            raise field_error("aggregate", f"Must be one of {', '.join(query.AGGREGATES)}.")
        try:
            series = query.time_series(name, window, interval=interval, aggregate=aggregate,
                                       org=self.read_org(), tags=tags)
        except ValueError as error:
            raise field_error("interval", str(error)) from None
        return Response(series.as_dict())


class PerformanceView(ApiView):
    @extend_schema(parameters=WINDOW_PARAMS, summary="Per endpoint: requests, error rate, p50/p95/p99 (ms)",
                   responses=inline_serializer("Performance", {
                       "start": serializers.DateTimeField(), "end": serializers.DateTimeField(),
                       "results": inline_serializer("EndpointPerformance", {
                           "endpoint": serializers.CharField(), "method": serializers.CharField(),
                           "requests": serializers.IntegerField(), "error_rate": serializers.FloatField(),
                           "p50": serializers.FloatField(), "p95": serializers.FloatField(),
                           "p99": serializers.FloatField()}, many=True)}))
    def get(self, request):
        window = window_from_params(request.query_params)
        return Response({**window.as_dict(), "results": performance_summary(window, org=self.read_org())})
