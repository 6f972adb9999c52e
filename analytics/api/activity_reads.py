"""The per-period activity analytics out (seed 003): a user's or an agent's period, and trends of a user, an
agent or the platform. A token reads its own org; staff name one with ``?org=`` (these are per-org figures)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from drf_spectacular.utils import OpenApiParameter
from pydantic import AfterValidator, Field
from rest_framework import exceptions

from analytics.models.activity import ENTITY_ID_MAX_LENGTH
from analytics.platform.contracts import Bounded, Query, endpoint
from analytics.platform.conventions import ApiView
from analytics.platform.errors import field_error
from analytics.platform.routes import PrintableSegment
from analytics.platform.tenancy import SLUG_PATTERN, Organization
from analytics.services import activity_reads as reads

# As the route's converter matches it: one segment of printable characters (an id holding "/" has no route).
ENTITY_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": ENTITY_ID_MAX_LENGTH,
                    "pattern": f"^{PrintableSegment.regex}$"}
USER_ID_PATH = OpenApiParameter("user_id", type=ENTITY_ID_SCHEMA, location=OpenApiParameter.PATH,
                                description="The user's id, as the activity events name it.")
AGENT_ID_PATH = OpenApiParameter("agent_id", type=ENTITY_ID_SCHEMA, location=OpenApiParameter.PATH,
                                 description="The agent's id, as the activity events name it.")
UtcTime = Annotated[datetime, AfterValidator(lambda moment: moment if moment.tzinfo else moment.replace(tzinfo=UTC))]


class OneOrgQuery(Query):
    org: str | None = Field(None, pattern=SLUG_PATTERN,
                            description="Staff: the org to read (required). A token reads its own org.")


class PeriodQuery(OneOrgQuery):
    period_type: reads.PeriodTypeName = Field("day", description="Hour, day, ISO week or calendar month (UTC).")
    start: UtcTime | None = Field(None, description="The period containing this time (ISO-8601; naive = UTC). "
                                                    "Default: the most recent stored period.")


class TrendQuery(OneOrgQuery):
    period_type: reads.PeriodTypeName = Field("day", description="Hour, day, ISO week or calendar month (UTC).")
    periods: Annotated[int, Bounded(1, reads.MAX_TREND_PERIODS, "How many periods, ending with the current one.",
                                    from_text=True)] = 7


class UserTrendQuery(TrendQuery):
    metric: reads.UserMetric = Field("sessions", description="The figure to follow.")


class AgentTrendQuery(TrendQuery):
    metric: reads.AgentMetric = Field("calls", description="The figure to follow.")


class PlatformTrendQuery(TrendQuery):
    metric: reads.PlatformMetric = Field("users_active", description="The figure to follow.")


class OneOrgView(ApiView):
    def one_org(self) -> Organization:
        """The token's org, or the one staff name with ``?org=`` (required: the figures are per org)."""
        scope = self.read_org()
        if scope.org is None:
            raise field_error("org", "Staff must name the organisation to read with ?org=<slug>.")
        return scope.org


def found(result, what: str):
    if result is None:
        raise exceptions.NotFound(f"No stored analytics for {what}.")
    return result


class UserPeriodView(OneOrgView):
    @endpoint(query=PeriodQuery, response=reads.UserPeriod, errors=[404], parameters=[USER_ID_PATH],
              summary="A user's activity in one period (default: the most recent stored day)")
    def get(self, request, user_id, query):
        period = reads.user_period(self.one_org(), user_id, query.period_type, at=query.start)
        return found(period, f"user {user_id!r} in this period")


class UserTrendView(OneOrgView):
    @endpoint(query=UserTrendQuery, response=reads.UserTrend, errors=[404], parameters=[USER_ID_PATH],
              summary="One figure of a user over the last N periods, with the change against the N before")
    def get(self, request, user_id, query):
        trend = reads.user_trend(self.one_org(), user_id, query.period_type, query.metric, query.periods)
        return found(trend, f"user {user_id!r}")


class AgentPeriodView(OneOrgView):
    @endpoint(query=PeriodQuery, response=reads.AgentPeriod, errors=[404], parameters=[AGENT_ID_PATH],
              summary="An agent's calls, availability, contracts, revenue and scores in one period "
                      "(default: the most recent stored day)")
    def get(self, request, agent_id, query):
        period = reads.agent_period(self.one_org(), agent_id, query.period_type, at=query.start)
        return found(period, f"agent {agent_id!r} in this period")


class AgentTrendView(OneOrgView):
    @endpoint(query=AgentTrendQuery, response=reads.AgentTrend, errors=[404], parameters=[AGENT_ID_PATH],
              summary="One figure of an agent over the last N periods, with the change against the N before")
    def get(self, request, agent_id, query):
        trend = reads.agent_trend(self.one_org(), agent_id, query.period_type, query.metric, query.periods)
        return found(trend, f"agent {agent_id!r}")


class PlatformTrendView(OneOrgView):
    @endpoint(query=PlatformTrendQuery, response=reads.PlatformTrend,
              summary="One platform figure of the org over the last N periods, with the change against the N "
                      "before")
    def get(self, request, query):
        return reads.platform_trend(self.one_org(), query.period_type, query.metric, query.periods)
