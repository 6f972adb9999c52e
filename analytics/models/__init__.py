from analytics.models.metrics import MetricEvent, MetricSeries, MetricSeriesTag, MetricType
from analytics.models.orgs import ApiToken, Organization
from analytics.models.rollups import DirtyMinute, MetricRollup, RollupState, RollupTier
from analytics.models.skills import Skill, SkillExecution, SkillHealthScore, SkillInstall, SkillRating

__all__ = [
    "ApiToken", "DirtyMinute", "MetricEvent", "MetricRollup", "RollupState", "RollupTier", "MetricSeries",
    "MetricSeriesTag", "MetricType", "Organization",
    "Skill", "SkillExecution", "SkillHealthScore", "SkillInstall", "SkillRating",
]
