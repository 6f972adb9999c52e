"""Admin pages of skill analytics: the catalogue with its health, executions read-only, explicit health scores."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from analytics.admin_paginators import CappedCountPaginator
from analytics.models import Skill, SkillExecution, SkillHealthScore
from analytics.services.health_score import RECENT, health_scores
from analytics.services.skills import rating_figures, skill_statistics
from analytics.services.windows import Window

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
    fields = ["org", "score", "source", "recorded_at"]
    ordering = ["-recorded_at"]
    max_num = 0  # added from their own page, where the org is chosen
    can_delete = False
    readonly_fields = fields


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["skill_id", "name", "version", "deprecated", "health", "success_rate", "p95_latency",
                    "rating", "last_recorded_at"]
    list_filter = ["deprecated", ("last_recorded_at", admin.DateFieldListFilter)]
    search_fields = ["skill_id", "name"]
    readonly_fields = ["skill_id", "created_at", "last_recorded_at"]
    inlines = [SkillHealthScoreInline]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ["created_at", "last_recorded_at"]

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
class SkillExecutionAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "skill_id", "org", "user_id", "success", "latency_ms", "error_type",
                    "skill_version"]
    list_filter = ["success", "org"]
    search_fields = ["=skill__skill_id", "=user_id", "=event_id"]
    date_hierarchy = "timestamp"
    ordering = ["-timestamp"]
    list_select_related = ["org"]
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

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
