from analytics.models.activity import (
    ActivityDirtyPeriod,
    ActivityEvent,
    AgentAnalytics,
    EventType,
    PeriodType,
    PlatformMetrics,
    UserAnalytics,
)
from analytics.models.leaderboards import LeaderboardEntry, RecommendationLog
from analytics.models.metrics import MetricEvent, MetricEventKey, MetricSeries, MetricSeriesTag, MetricType
from analytics.models.otlp import OtlpCumulativeState
from analytics.models.rollups import DirtyMinute, MetricRollup, RollupState, RollupTier
from analytics.models.skills import (
    Skill,
    SkillExecution,
    SkillExecutionTotals,
    SkillHealthScore,
    SkillHealthSnapshot,
    SkillInstall,
    SkillRating,
    SkillUsageDay,
    SkillUserDay,
    SkillUserLastUse,
)
from analytics.platform.tenancy import ApiToken, Organization

__all__ = [
    "ActivityDirtyPeriod", "ActivityEvent", "AgentAnalytics", "EventType", "PeriodType", "PlatformMetrics",
    "UserAnalytics",
    "ApiToken", "DirtyMinute", "LeaderboardEntry", "MetricEvent", "MetricEventKey", "MetricRollup", "RollupState",
    "RollupTier",
    "MetricSeries", "MetricSeriesTag", "RecommendationLog", "MetricType", "Organization", "OtlpCumulativeState",
    "Skill", "SkillExecution", "SkillExecutionTotals", "SkillHealthScore", "SkillHealthSnapshot", "SkillInstall",
    "SkillRating", "SkillUsageDay", "SkillUserDay", "SkillUserLastUse",
]
