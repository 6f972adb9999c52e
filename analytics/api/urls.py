from analytics.api import activity, activity_reads, activity_tracking, leaderboards, metrics, skills
from analytics.platform import token_views as tokens
from analytics.platform.routes import api_path

urlpatterns = [
    *api_path("me", tokens.WhoAmIView.as_view(), "me"),
    *api_path("tokens", tokens.TokenListView.as_view(), "token-list"),
    *api_path("tokens/<int:pk>", tokens.TokenDetailView.as_view(), "token-detail"),
    *api_path("metrics", metrics.MetricListView.as_view(), "metric-list"),
    *api_path("metrics/record", metrics.MetricIngestView.as_view(), "metric-record"),
    *api_path("metrics/batch", metrics.MetricIngestView.as_view(), "metric-batch"),
    *api_path("metrics/<printable_path:name>/statistics", metrics.MetricStatisticsView.as_view(), "metric-statistics"),
    *api_path("metrics/<printable_path:name>/time-series", metrics.MetricTimeSeriesView.as_view(),
              "metric-time-series"),
    *api_path("performance", metrics.PerformanceView.as_view(), "performance"),
    *api_path("events", activity.ActivityEventIngestView.as_view(), "activity-events"),
    *api_path("batch-track", activity_tracking.BatchTrackView.as_view(), "activity-batch-track"),
    *api_path("user/<printable:user_id>", activity_reads.UserPeriodView.as_view(), "user-analytics"),
    *api_path("user/<printable:user_id>/trends", activity_reads.UserTrendView.as_view(), "user-trends"),
    *api_path("agent/<printable:agent_id>", activity_reads.AgentPeriodView.as_view(), "agent-analytics"),
    *api_path("agent/<printable:agent_id>/trends", activity_reads.AgentTrendView.as_view(), "agent-trends"),
    *api_path("platform/trends", activity_reads.PlatformTrendView.as_view(), "platform-trends"),
    # The fixed words first: they are reserved, never skill ids.
    *api_path("skills/executions", skills.SkillExecutionIngestView.as_view(), "skill-executions"),
    *api_path("skills/ratings", skills.SkillRatingIngestView.as_view(), "skill-ratings"),
    *api_path("skills/installs", skills.SkillInstallIngestView.as_view(), "skill-installs"),
    *api_path("skills/leaderboard", leaderboards.LeaderboardView.as_view(), "skill-leaderboard"),
    *api_path("skills/adoption", leaderboards.AdoptionView.as_view(), "skill-adoption"),
    *api_path("skills/recommendations", leaderboards.RecommendationsView.as_view(), "skill-recommendations"),
    *api_path("skills/<printable:skill_id>", skills.SkillDetailView.as_view(), "skill-detail"),
    *api_path("skills/<printable:skill_id>/trend", skills.SkillTrendView.as_view(), "skill-trend"),
    *api_path("skills/<printable:skill_id>/versions", skills.SkillVersionsView.as_view(), "skill-versions"),
]
