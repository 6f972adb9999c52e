"""Leaderboards, adoption and recommendations (API.md, Skills; docs/leaderboards.md).

Their routes come before ``skills/<skill_id>``: the three words are reserved skill ids.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from analytics.platform.conventions import ApiView, window_from_params
from analytics.platform.errors import field_error
from analytics.platform.windows import isoformat
from analytics.services import adoption, leaderboards, recommendations
from analytics.services.skills import USER_ID_MAX_LENGTH

WINDOW_FIELDS = ("hours", "days", "start", "end")
ORG_PARAM = OpenApiParameter("org", OpenApiTypes.STR, description="Staff only: the org to read (default all orgs).")


def window_params(default: str) -> list[OpenApiParameter]:
    return [
        OpenApiParameter("hours", OpenApiTypes.NUMBER, description=f"Rolling window ending now (default {default})."),
        OpenApiParameter("days", OpenApiTypes.NUMBER, description="Rolling window ending now."),
        OpenApiParameter("start", OpenApiTypes.DATETIME, description="Window start (ISO-8601, naive = UTC)."),
        OpenApiParameter("end", OpenApiTypes.DATETIME, description="Window end (default now)."),
    ]


def limit_param(default: int) -> OpenApiParameter:
    return OpenApiParameter("limit", OpenApiTypes.INT, default=default,
                            description=f"How many results, 1 to {leaderboards.CACHE_SIZE}.")


def limit_from_params(params, default: int) -> int:
    value = params.get("limit")
    if value in (None, ""):
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise field_error("limit", f"{value!r} is not an integer.") from None
    if not 1 <= limit <= leaderboards.CACHE_SIZE:
        raise field_error("limit", f"Must be from 1 to {leaderboards.CACHE_SIZE}.")
    return limit


# --- Leaderboard ---------------------------------------------------------------------


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    skill_id = serializers.CharField()
    score = serializers.FloatField(help_text="What the board ranks by (see description); higher is better.")


class LeaderboardSerializer(serializers.Serializer):
    type = serializers.ChoiceField(leaderboards.BOARD_TYPES)
    computed_at = serializers.DateTimeField(help_text="When the board was computed (by the job, or now).")
    cached = serializers.BooleanField(help_text="Served from leaderboard_cache (not stale).")
    description = serializers.CharField()
    start = serializers.DateTimeField(required=False, help_text="Only for a usage board over a given window.")
    end = serializers.DateTimeField(required=False)
    results = LeaderboardRowSerializer(many=True, help_text="Each row also carries the figures behind its score.")


class LeaderboardView(ApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter("type", OpenApiTypes.STR, enum=list(leaderboards.BOARD_TYPES), default="usage"),
            limit_param(10), *window_params("the cached 30 days"), ORG_PARAM,
        ],
        responses=LeaderboardSerializer,
        summary="Top skills by usage, rating, most improved or trending new",
        description="Served from the cache that the job analytics.compute_leaderboards fills every 15 minutes; "
                    "computed now when missing or older than 30 minutes. A window (usage only) computes the "
                    "usage board over it instead of the cached 30 days.",
    )
    def get(self, request):
        params = request.query_params
        board_type = params.get("type") or "usage"
        limit = limit_from_params(params, 10)
        org = self.read_org()
        windowed = [name for name in WINDOW_FIELDS if params.get(name) not in (None, "")]
        try:
            leaderboards.board_request(board_type, limit, windowed)
        except leaderboards.BoardRequestError as error:
            raise field_error(error.field, error.message) from None
        if windowed:
            window = window_from_params(params)
            board = leaderboards.usage_board(window, org=org, limit=limit)
            return Response({"type": board_type, "computed_at": isoformat(timezone.now()), "cached": False,
                             "description": "Executions in the window.", **window.as_dict(), "results": board})
        return Response(leaderboards.get_board(board_type, org=org, limit=limit))


# --- Adoption ------------------------------------------------------------------------


class WeekSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    executions = serializers.IntegerField()
    active_users = serializers.IntegerField()


class AdoptionSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    skills_per_user = serializers.DictField(
        help_text="users, mean, median, max, and histogram {number of skills: number of users} over the window.")
    org_adoption_rate = serializers.FloatField(allow_null=True,
                                               help_text="Share (0-1) of the non-deprecated catalogue used.")
    skills_used = serializers.IntegerField()
    catalogue_size = serializers.IntegerField()
    weekly_growth = serializers.DictField(
        help_text="this_week and last_week (executions, active users) ending at `end`, and their growth.")
    engaged_users = serializers.IntegerField(help_text="Users active on at least 3 of the last 7 UTC days.")
    active_users_last_7_days = serializers.IntegerField()
    engagement_rate = serializers.FloatField(allow_null=True)
    engagement_since = serializers.DateTimeField()
    orgs = serializers.ListField(child=serializers.DictField(), required=False,
                                 help_text="Staff over all orgs: each org's adoption rate.")


class AdoptionView(ApiView):
    @extend_schema(parameters=[*window_params("30 days"), ORG_PARAM], responses=AdoptionSerializer,
                   summary="Skills per user, adoption rate, weekly growth and engaged users")
    def get(self, request):
        window = window_from_params(request.query_params, default=adoption.DEFAULT_WINDOW)
        return Response(adoption.adoption(window, org=self.read_org()))


# --- Recommendations -------------------------------------------------------------------


class RecommendationRowSerializer(serializers.Serializer):
    skill_id = serializers.CharField()
    score = serializers.FloatField(help_text="c / (n + 1): the share of neighbours using it, shrunk.")
    reason = serializers.CharField()
    strategy = serializers.ChoiceField([recommendations.CO_USAGE, recommendations.POPULARITY])


class RecommendationsSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    results = RecommendationRowSerializer(many=True)


class RecommendationsView(ApiView):
    @extend_schema(
        parameters=[OpenApiParameter("user_id", OpenApiTypes.STR, required=True), limit_param(10),
                    *window_params("30 days"), ORG_PARAM],
        responses=RecommendationsSerializer,
        summary="Skills to try: used by users who use this user's skills (popularity for a new user)",
        description="Every recommendation served is logged in recommendation_log, where its follow-up "
                    "(a use within 7 days) is measured.",
    )
    def get(self, request):
        params = request.query_params
        user_id = (params.get("user_id") or "").strip()
        if not user_id:
            raise field_error("user_id", "This parameter is required.")
        if len(user_id) > USER_ID_MAX_LENGTH:
            raise field_error("user_id", f"At most {USER_ID_MAX_LENGTH} characters.")
        limit = limit_from_params(params, 10)
        window = window_from_params(params, default=recommendations.DEFAULT_WINDOW)
        found = recommendations.serve_recommendations(user_id, window, org=self.read_org(), limit=limit)
        return Response({
            "user_id": user_id, **window.as_dict(),
            "results": [{"skill_id": item.skill_id, "score": item.score, "reason": item.reason,
                         "strategy": item.strategy} for item in found],
        })

