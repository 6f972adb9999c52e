"""Seed 001's ``leaderboard_cache`` and ``recommendation_log`` tables (docs/leaderboards.md).

``leaderboard_cache`` holds the boards the scheduled job ``analytics.compute_leaderboards``
computes: one row per (org, board, rank), an empty org meaning "all orgs together".
A board is replaced whole; its rows share one ``computed_at``.

Here, unlike on event rows, a NULL org is not the platform scope: it is the board of
``Scope`` ALL_ORGS. No board is kept for PLATFORM. ``services.leaderboards.cache_org``
maps a scope to its rows; the same encoding holds for ``recommendation_log``
(``services.recommendations.log_org``).

``recommendation_log`` holds every recommendation the API served. Whether it was
followed (a use of that skill by that user within 7 days) is **computed on read**
(``services.recommendations.with_outcome``), not stored: an execution recorded late,
with an earlier timestamp, still counts, and no job has to revisit old rows.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from analytics.models.skills import Skill
from analytics.platform.tenancy import Organization


class BoardType(models.TextChoices):
    USAGE = "usage", "top by usage"
    RATING = "rating", "top by rating"
    MOST_IMPROVED = "most_improved", "most improved"
    TRENDING_NEW = "trending_new", "trending new"


class LeaderboardEntry(models.Model):
    # NULL: the board over ALL_ORGS (see the module docstring), not the platform scope.
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            help_text="Empty: the board over all orgs together (staff).")
    metric_type = models.CharField(max_length=32, choices=BoardType.choices)
    rank = models.PositiveIntegerField()
    skill = models.ForeignKey(Skill, to_field="skill_id", db_column="skill_id", on_delete=models.CASCADE,
                              related_name="+")
    score = models.FloatField()
    details = models.JSONField(default=dict, blank=True, help_text="The figures behind the score.")
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "leaderboard_cache"
        ordering = ["metric_type", "org_id", "rank"]
        verbose_name = "leaderboard entry"
        verbose_name_plural = "leaderboard entries"
        constraints = [
            # One row per rank: two writers filling the same board at once collide instead of doubling it.
            models.UniqueConstraint(fields=["org", "metric_type", "rank"], condition=models.Q(org__isnull=False),
                                    name="leaderboard_cache_org_rank"),
            models.UniqueConstraint(fields=["metric_type", "rank"], condition=models.Q(org__isnull=True),
                                    name="leaderboard_cache_all_orgs_rank"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_type} #{self.rank}: {self.skill_id} ({self.org or 'all orgs'})"


class RecommendationLog(models.Model):
    # NULL: recommended from ALL_ORGS' data (see the module docstring), not the platform scope.
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                            help_text="Empty: recommended from all orgs' data (a staff request).")
    user_id = models.CharField(max_length=200)
    skill = models.ForeignKey(Skill, to_field="skill_id", db_column="recommended_skill_id",
                              on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    reason = models.CharField(max_length=500)
    strategy = models.CharField(max_length=32, help_text="co_usage, or popularity for a user without history.")
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "recommendation_log"
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["org", "timestamp"], name="recommendation_log_org_time"),
            models.Index(fields=["org", "user_id", "skill"], name="recommendation_log_user"),
        ]

    def __str__(self) -> str:
        return f"{self.skill_id} for {self.user_id} at {self.timestamp:%Y-%m-%d %H:%M}"
