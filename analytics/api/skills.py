"""Skill endpoints (API.md, Skills): executions, ratings and installs in; a skill's figures and trend out."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from analytics.api.metrics import WINDOW_PARAMS, IngestResultSerializer
from analytics.platform.conventions import ApiView, window_from_params
from analytics.platform.errors import field_error
from analytics.services import skills

TREND_DEFAULT_WINDOWS = {"hour": timedelta(hours=24), "day": timedelta(days=30)}


class SkillEventSerializer(serializers.Serializer):
    """Fields every skill item shares. Documentation only: ``services.skills`` validates."""

    skill_id = serializers.CharField(max_length=200, help_text="The orchestrator's id; not a reserved path word.")
    user_id = serializers.CharField(max_length=200, required=False)
    org_id = serializers.CharField(required=False, help_text="If given, the token's org slug.")
    timestamp = serializers.DateTimeField(required=False, help_text="Default now; naive = UTC.")
    event_id = serializers.CharField(max_length=128, required=False, help_text="Repeated ids are stored once.")


class SkillExecutionItemSerializer(SkillEventSerializer):
    success = serializers.BooleanField()
    latency_ms = serializers.FloatField(min_value=0)
    error_type = serializers.CharField(max_length=200, required=False)
    skill_version = serializers.CharField(max_length=64, required=False)


class SkillRatingItemSerializer(SkillEventSerializer):
    rating = serializers.IntegerField(min_value=1, max_value=5,
                                      help_text="With a user_id, replaces that user's earlier rating.")


class SkillInstallItemSerializer(SkillEventSerializer):
    pass


class SkillSummarySerializer(serializers.Serializer):
    skill_id = serializers.CharField()
    execution_count = serializers.IntegerField()
    success_count = serializers.IntegerField()
    failure_count = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="A fraction 0-1.")
    avg_latency_ms = serializers.FloatField(allow_null=True)
    p50_latency_ms = serializers.FloatField(allow_null=True)
    p95_latency_ms = serializers.FloatField(allow_null=True)
    p99_latency_ms = serializers.FloatField(allow_null=True)
    rating_avg = serializers.FloatField(allow_null=True, help_text="All-time, current ratings.")
    rating_count = serializers.IntegerField()
    install_count = serializers.IntegerField(help_text="All-time.")
    health_score = serializers.FloatField(allow_null=True, help_text="0-100 now; see docs/health-score.md.")
    health_components = serializers.DictField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class TrendPointSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    executions = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    p95_latency_ms = serializers.FloatField(allow_null=True)


class SkillTrendSerializer(serializers.Serializer):
    skill_id = serializers.CharField()
    interval = serializers.ChoiceField(list(TREND_DEFAULT_WINDOWS))
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    source = serializers.ChoiceField(["raw", "rollup"])
    points = TrendPointSerializer(many=True)


class SkillIngestView(ApiView):
    """Shared by the three ingest endpoints: one item, an array, or ``{"events": [...]}``."""

    def ingest(self, validate_item, record):
        org = self.write_org()
        items = self.validated_batch(partial(validate_item, org_slug=org.slug))
        return Response(record(org, items).as_dict(), status=status.HTTP_201_CREATED)


class SkillExecutionIngestView(SkillIngestView):
    @extend_schema(request=SkillExecutionItemSerializer(many=True), responses={201: IngestResultSerializer},
                   summary="Record skill executions (one, an array, or {events: [...]}; up to 10,000)")
    def post(self, request):
        return self.ingest(skills.validate_execution_item, skills.record_executions)


class SkillRatingIngestView(SkillIngestView):
    @extend_schema(request=SkillRatingItemSerializer(many=True), responses={201: IngestResultSerializer},
                   summary="Record skill ratings (1-5; a user's newest rating replaces their earlier one)")
    def post(self, request):
        return self.ingest(skills.validate_rating_item, skills.record_ratings)


class SkillInstallIngestView(SkillIngestView):
    @extend_schema(request=SkillInstallItemSerializer(many=True), responses={201: IngestResultSerializer},
                   summary="Record skill installs")
    def post(self, request):
        return self.ingest(skills.validate_install_item, skills.record_installs)


class SkillDetailView(ApiView):
    @extend_schema(parameters=WINDOW_PARAMS, responses=SkillSummarySerializer,
                   summary="A skill's executions in the window, all-time ratings and installs, and its health")
    def get(self, request, skill_id):
        window = window_from_params(request.query_params)
        summary = skills.skill_summary(skill_id, window, org=self.read_org())
        if summary is None:
            raise exceptions.NotFound(f"No data about skill {skill_id!r}.")
        return Response(summary)


class SkillTrendView(ApiView):
    @extend_schema(
        parameters=[*WINDOW_PARAMS, OpenApiParameter(
            "interval", OpenApiTypes.STR, enum=list(TREND_DEFAULT_WINDOWS), default="hour",
            description="Bucket size. Default window: 24 hours for hour, 30 days for day.")],
        responses=SkillTrendSerializer, summary="Executions, success rate and p95 latency per hour or day",
    )
    def get(self, request, skill_id):
        interval = request.query_params.get("interval", "hour")
        if interval not in TREND_DEFAULT_WINDOWS:
            raise field_error("interval", f"Must be one of {', '.join(TREND_DEFAULT_WINDOWS)}.")
        window = window_from_params(request.query_params, default=TREND_DEFAULT_WINDOWS[interval])
        trend = skills.skill_trend(skill_id, window, interval, org=self.read_org())
        if trend is None:
            raise exceptions.NotFound(f"No data about skill {skill_id!r}.")
        return Response(trend)
