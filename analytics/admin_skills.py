"""Admin pages of skill analytics: the catalogue with its health, leaderboards and adoption, executions
read-only, explicit health scores, the cached leaderboards and the recommendation log with its outcomes."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from analytics.models import LeaderboardEntry, RecommendationLog, Skill, SkillExecution, SkillHealthScore
from analytics.platform.admin import CappedCountPaginator, ReadOnlyAdmin
from analytics.platform.windows import Window
from analytics.services import adoption, leaderboards, recommendations
from analytics.services.health_score import RECENT, health_scores
from analytics.services.skills import rating_figures, skill_statistics

BADGE_COLOURS = [(80, "#2e7d32"), (50, "#ef6c00"), (0, "#c62828")]


def health_badge(score: float | None) -> str:
    if score is None:
        return format_html('<span style="color:#757575">{}</span>', "no data")
    colour = next(colour for floor, colour in BADGE_COLOURS if score >= floor)
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 7px;border-radius:9px;font-weight:bold">{}</span>',
        colour, f"{score:.0f}",
    )


class SkillHealthScoreInline(admin.TabularInline):
    model = SkillHealthScore
    extra = 0
    readonly_fields = ("org", "score", "source", "recorded_at")
    fields = readonly_fields
    ordering = ["-recorded_at"]
    max_num = 0  # added from their own page, where the org is chosen
    can_delete = False


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["skill_id", "name", "version", "deprecated", "health", "success_rate", "p95_latency",
                    "rating", "last_recorded_at"]
    list_filter = ["deprecated", ("last_recorded_at", admin.DateFieldListFilter)]
    search_fields = ["skill_id", "name"]
    readonly_fields = ["skill_id", "created_at", "last_recorded_at", "leaderboard_ranks", "adoption_figures"]
    inlines = [SkillHealthScoreInline]
    change_list_template = "admin/analytics/skill/change_list_with_boards.html"

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ["created_at", "last_recorded_at"]

    def changelist_view(self, request, extra_context=None):
        """Above the list: the four boards over all orgs (from the cache) and the adoption figures."""
        now = timezone.now()
        boards = [(leaderboards.DESCRIPTIONS[board_type], board_type,
                   leaderboards.get_board(board_type, limit=5, now=now)) for board_type in leaderboards.BOARD_TYPES]
        figures = adoption.adoption(adoption_window(now))
        extra_context = {**(extra_context or {}), "boards": boards, "adoption": figures}
        return super().changelist_view(request, extra_context=extra_context)

    @admin.display(description="leaderboard ranks")
    def leaderboard_ranks(self, skill):
        ranks = leaderboards.skill_ranks(skill.skill_id)
        if not ranks:
            return "On no cached leaderboard."
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>#{}</td><td>{}</td><td>{}</td></tr>", (
            (rank["board"], rank["org"], rank["rank"], f"{rank['score']:.4g}",
             rank["computed_at"].strftime("%Y-%m-%d %H:%M UTC")) for rank in ranks))
        return format_html("<table><tr><th>board</th><th>org</th><th>rank</th><th>score</th><th>computed</th>"
                           "</tr>{}</table>", rows)

    @admin.display(description="adoption (30 days, all orgs)")
    def adoption_figures(self, skill):
        figures = adoption.skill_adoption(skill.skill_id, adoption_window(timezone.now()))
        share = "–" if figures["user_share"] is None else f"{figures['user_share']:.1%}"
        return format_html("{} users of {} active ({}), in {} org(s)", figures["users"], figures["active_users"],
                           share, figures["orgs"])

    def get_changelist_instance(self, request):
        # The figures of a page's skills are computed together (a few queries), not once per row.
        changelist = super().get_changelist_instance(request)
        skills = list(changelist.result_list)
        skill_ids = [skill.skill_id for skill in skills]
        now = timezone.now()
        statistics = skill_statistics(skill_ids, Window(now - RECENT, now))
        health = health_scores(skill_ids, now=now)
        ratings = rating_figures(skill_ids)
        for skill in skills:
            skill.figures = {**statistics.get(skill.skill_id, {}), **ratings.get(skill.skill_id, {}),
                             "health": health[skill.skill_id].score}
        return changelist

    @admin.display(description="health")
    def health(self, skill):
        return health_badge(getattr(skill, "figures", {}).get("health"))

    @admin.display(description="success rate (7 days)")
    def success_rate(self, skill):
        rate = getattr(skill, "figures", {}).get("success_rate")
        return "–" if rate is None else f"{rate:.1%}"

    @admin.display(description="p95 latency (7 days)")
    def p95_latency(self, skill):
        p95 = getattr(skill, "figures", {}).get("p95_latency_ms")
        return "–" if p95 is None else f"{p95:,.0f} ms"

    @admin.display(description="rating")
    def rating(self, skill):
        figures = getattr(skill, "figures", {})
        if not figures.get("rating_count"):
            return "–"
        return f"{figures['rating_avg']:.2f} ({figures['rating_count']})"


@admin.register(SkillExecution)
class SkillExecutionAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "skill_id", "org", "user_id", "success", "latency_ms", "error_type",
                    "skill_version"]
    list_filter = ["success", "org"]
    search_fields = ["=user_id", "=event_id"]  # and part of a skill id: get_search_results
    search_help_text = "Part of a skill id (parse finds parse_json), or a whole user id or event id."
    date_hierarchy = "timestamp"
    ordering = ["-timestamp"]
    list_select_related = ["org"]
    paginator = CappedCountPaginator
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        """Part of a skill id is looked up in the small skill catalogue first, so the executions are read by
        their (skill, timestamp) index rather than by a LIKE over every row; user and event ids match whole."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            skills = Skill.objects.filter(skill_id__icontains=term).values("skill_id")
            results |= queryset.filter(skill__in=skills)
        return results, may_have_duplicates

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SkillHealthScore)
class SkillHealthScoreAdmin(admin.ModelAdmin):
    """Explicit scores; one set here is in effect until newer data about the skill arrives."""

    list_display = ["skill", "org", "score", "source", "recorded_at"]
    list_filter = ["source", "org"]
    search_fields = ["skill__skill_id"]
    date_hierarchy = "recorded_at"
    autocomplete_fields = ["skill"]
    fields = ["skill", "org", "score", "source", "recorded_at"]

    def get_changeform_initial_data(self, request):
        return {"source": "admin"}


def adoption_window(now):
    return Window(now - timedelta(days=30), now)


@admin.register(LeaderboardEntry)
class LeaderboardEntryAdmin(ReadOnlyAdmin):
    """The cache the job analytics.compute_leaderboards fills; read-only."""

    list_display = ["metric_type", "org_label", "rank", "skill", "score", "computed_at"]
    list_filter = ["metric_type", "org"]
    search_fields = ["skill__skill_id"]
    list_select_related = ["org", "skill"]
    ordering = ["metric_type", "org__slug", "rank"]

    @admin.display(description="org", ordering="org__slug")
    def org_label(self, entry):
        return entry.org.slug if entry.org else "all orgs"



@admin.register(RecommendationLog)
class RecommendationLogAdmin(ReadOnlyAdmin):
    """Every recommendation served, with its follow-up: a use of the skill by the user within 7 days."""

    list_display = ["timestamp", "org", "user_id", "skill", "score", "reason", "strategy", "outcome"]
    list_filter = ["strategy", "org"]
    search_fields = ["=user_id", "skill__skill_id"]
    list_select_related = ["org", "skill"]
    date_hierarchy = "timestamp"
    paginator = CappedCountPaginator
    show_full_result_count = False
    readonly_fields = ["timestamp", "org", "user_id", "skill", "score", "reason", "strategy", "outcome"]
    change_list_template = "admin/analytics/recommendationlog/change_list_with_effectiveness.html"

    def get_queryset(self, request):
        return recommendations.with_outcome(super().get_queryset(request))

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "effectiveness": recommendations.effectiveness()}
        return super().changelist_view(request, extra_context=extra_context)

    @admin.display(description="outcome")
    def outcome(self, row):
        result = recommendations.outcome(row)
        if result == "followed":
            return f"followed {row.followed_at:%Y-%m-%d %H:%M}"
        return result


    def has_delete_permission(self, request, obj=None):
        return False
