"""Skill endpoints (API.md, Skills): executions, ratings and installs in; a skill's figures and trend out."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from drf_spectacular.utils import OpenApiParameter
from pydantic import Field, model_validator
from rest_framework import exceptions

from analytics.platform.contracts import InvalidParameter, OrgQuery, WindowQuery, endpoint
from analytics.platform.conventions import ApiView
from analytics.platform.windows import Window
from analytics.services import metrics_query, skill_versions, skills
from analytics.services.metrics_ingest import IngestResult

TREND_DEFAULT_WINDOWS = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
SKILL_ID_PATH = OpenApiParameter("skill_id", type=skills.SKILL_ID_SCHEMA, location=OpenApiParameter.PATH,
                                 description="A skill id (not one of the reserved words).")


class SkillQuery(WindowQuery, OrgQuery):
    pass


class SkillTrendQuery(SkillQuery):
    interval: skills.TrendInterval = Field("hour", description="Bucket size. Default window: 24 hours for hour, "
                                                               "30 days for day. At most 20,000 points.")

    def trend_window(self) -> Window:
        return self.window(TREND_DEFAULT_WINDOWS[self.interval])

    @model_validator(mode="after")
    def _not_too_many_points(self):
        seconds = metrics_query.INTERVALS[skills.TREND_INTERVALS[self.interval]]
        problem = metrics_query.too_many_points(self.trend_window(), seconds)
        if problem:
            raise InvalidParameter("interval", problem)
        return self


class SkillExecutionIngestView(ApiView):
    # A pydantic dataclass item: endpoint(items=) is annotated for RequestContract models only.
    @endpoint(items=skills.ExecutionItem, response=IngestResult, status_code=201,
              summary="Record skill executions (one, an array, or {events: [...]}; up to 10,000)")
    def post(self, request, org, items):
        return skills.record_executions(org, items)


class SkillRatingIngestView(ApiView):
    # A pydantic dataclass item: endpoint(items=) is annotated for RequestContract models only.
    @endpoint(items=skills.RatingItem, response=IngestResult, status_code=201,
              summary="Record skill ratings (1-5; a user's newest rating replaces their earlier one)")
    def post(self, request, org, items):
        return skills.record_ratings(org, items)


class SkillInstallIngestView(ApiView):
    # A pydantic dataclass item: endpoint(items=) is annotated for RequestContract models only.
    @endpoint(items=skills.InstallItem, response=IngestResult, status_code=201,
              summary="Record skill installs")
    def post(self, request, org, items):
        return skills.record_installs(org, items)


class SkillDetailView(ApiView):
    @endpoint(query=SkillQuery, response=skills.SkillSummary, errors=[404], parameters=[SKILL_ID_PATH],
              summary="A skill's executions in the window, all-time ratings and installs, and its health")
    def get(self, request, skill_id, query):
        summary = skills.skill_summary(skill_id, query.window(), org=self.read_org())
        if summary is None:
            raise exceptions.NotFound(f"No data about skill {skill_id!r}.")
        return summary


class SkillTrendView(ApiView):
    @endpoint(query=SkillTrendQuery, response=skills.SkillTrend, errors=[404], parameters=[SKILL_ID_PATH],
              summary="Executions, success rate and p95 latency per hour or day")
    def get(self, request, skill_id, query):
        trend = skills.skill_trend(skill_id, query.trend_window(), query.interval, org=self.read_org())
        if trend is None:
            raise exceptions.NotFound(f"No data about skill {skill_id!r}.")
        return trend



class SkillVersionsQuery(SkillQuery):
    default_window: ClassVar[timedelta] = timedelta(days=7)


VERSIONS_DESCRIPTION = (
    "Default window: 7 days. Per version (in the order first seen): executions, success rate, p50 and p95 "
    "latency; against the previous version: deltas, a two-proportion z-test of the success rate, a "
    "Mann-Whitney U test of the latencies, and a verdict per aspect — \"better\" or \"worse\" only when "
    f"p < {skill_versions.SIGNIFICANCE_LEVEL} and both versions have at least {skill_versions.MIN_SAMPLE} "
    f"executions. Latencies come from the most recent {skill_versions.LATENCY_SAMPLE_CAP:,} executions of each "
    "version. Ratings have no version: the skill's rating is in GET skills/{skill_id}. See docs/skill-versions.md."
)


class SkillVersionsView(ApiView):
    @endpoint(query=SkillVersionsQuery, response=skill_versions.SkillVersions, errors=[404],
              parameters=[SKILL_ID_PATH], description=VERSIONS_DESCRIPTION,
              summary="Each version of the skill in the window, compared with the previous one")
    def get(self, request, skill_id, query):
        versions = skill_versions.compare_versions(skill_id, query.window(), org=self.read_org())
        if versions is None:
            raise exceptions.NotFound(f"No executions of skill {skill_id!r}.")
        return versions
