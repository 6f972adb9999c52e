"""Leaderboards, adoption and recommendations (API.md, Skills; docs/leaderboards.md).

Their routes come before ``skills/<skill_id>``: the three words are reserved skill ids.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from analytics.platform.contracts import PRINTABLE, Bounded, InvalidParameter, OrgQuery, WindowQuery, endpoint
from analytics.platform.conventions import ApiView
from analytics.services import adoption, leaderboards, recommendations
from analytics.services.skills import USER_ID_MAX_LENGTH

WINDOW_FIELDS = ("hours", "days", "start", "end")
# As skill executions declare user_id (printable, at most USER_ID_MAX_LENGTH), but required and not empty.
RequiredUserId = Annotated[str, Field(min_length=1, max_length=USER_ID_MAX_LENGTH, pattern=PRINTABLE,
                                      description="The user to recommend skills to.")]


class LeaderboardQuery(WindowQuery, OrgQuery):
    """Without a window, the board's own period (the cached 30 days for usage); a window is for usage only."""

    type: leaderboards.BoardTypeName = Field("usage", description="Which board.")
    limit: Annotated[int, Bounded(1, leaderboards.CACHE_SIZE, "How many rows.", from_text=True)] = 10

    def window_fields(self) -> list[str]:
        return [name for name in WINDOW_FIELDS if getattr(self, name) is not None]

    @model_validator(mode="after")
    def _window_only_for_usage(self):
        try:
            leaderboards.board_request(self.type, self.limit, self.window_fields())
        except leaderboards.BoardRequestError as error:
            raise InvalidParameter(error.field, error.message) from None
        return self


class AdoptionQuery(WindowQuery, OrgQuery):
    default_window: ClassVar = adoption.DEFAULT_WINDOW


class RecommendationsQuery(WindowQuery, OrgQuery):
    default_window: ClassVar = recommendations.DEFAULT_WINDOW

    user_id: RequiredUserId
    limit: Annotated[int, Bounded(1, recommendations.MAX_LIMIT, "How many recommendations.", from_text=True)] = 10


class LeaderboardView(ApiView):
    @endpoint(
        query=LeaderboardQuery, response=leaderboards.Leaderboard,
        summary="Top skills by usage, rating, most improved or trending new",
        description="Served from the cache that the job analytics.compute_leaderboards fills every 15 minutes; "
                    "computed now when missing or older than 30 minutes. A window (usage only) computes the "
                    "usage board over it instead of the cached 30 days.",
    )
    def get(self, request, query):
        org = self.read_org()
        if query.window_fields():
            return leaderboards.window_board(query.window(), org=org, limit=query.limit)
        return leaderboards.get_board(query.type, org=org, limit=query.limit)


class AdoptionView(ApiView):
    @endpoint(query=AdoptionQuery, response=adoption.Adoption,
              summary="Skills per user, adoption rate, weekly growth and engaged users (default window: 30 days)")
    def get(self, request, query):
        return adoption.adoption(query.window(), org=self.read_org())


class RecommendationsView(ApiView):
    @endpoint(
        query=RecommendationsQuery, response=recommendations.Recommendations,
        summary="Skills to try: used by users who use this user's skills (popularity for a new user)",
        description="Drawn from the window's history (default 30 days). Every recommendation served is logged in "
                    "recommendation_log, where its follow-up (a use within 7 days) is measured.",
    )
    def get(self, request, query):
        return recommendations.recommendations_body(query.user_id, query.window(), org=self.read_org(),
                                                    limit=query.limit)
