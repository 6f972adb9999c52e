"""Admin pages of the activity analytics: the raw events and the per-period rows of users, agents and the
platform, all read-only (the API and the computation write them)."""

from __future__ import annotations

from django.contrib import admin

from analytics.models import ActivityEvent, AgentAnalytics, PlatformMetrics, UserAnalytics
from analytics.platform.admin import CappedCountPaginator, ReadOnlyAdmin


class PeriodRowAdmin(ReadOnlyAdmin):
    list_filter = ["period_type", "org"]
    date_hierarchy = "period_start"
    ordering = ["-period_start"]
    list_select_related = ["org"]
    paginator = CappedCountPaginator
    show_full_result_count = False


@admin.register(ActivityEvent)
class ActivityEventAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "type", "org", "user_id", "agent_id", "contract_id", "value", "fee", "success"]
    list_filter = ["type", "org"]
    # Whole ids: an exact match, not a LIKE over every event.
    search_fields = ["=user_id", "=agent_id", "=contract_id", "=event_id"]
    search_help_text = "A whole user, agent, contract or event id."
    date_hierarchy = "timestamp"
    ordering = ["-timestamp"]
    list_select_related = ["org"]
    paginator = CappedCountPaginator
    show_full_result_count = False


@admin.register(UserAnalytics)
class UserAnalyticsAdmin(PeriodRowAdmin):
    list_display = ["user_id", "period_type", "period_start", "org", "sessions", "page_views", "actions",
                    "contracts_created", "credits_spent", "total_spent", "agents_used", "orchestrations_run"]
    search_fields = ["=user_id"]
    search_help_text = "A whole user id."


@admin.register(AgentAnalytics)
class AgentAnalyticsAdmin(PeriodRowAdmin):
    list_display = ["agent_id", "period_type", "period_start", "org", "calls", "success_rate",
                    "p95_response_time_ms", "uptime_percentage", "bids", "contracts_won", "revenue",
                    "reputation_score"]
    search_fields = ["=agent_id"]
    search_help_text = "A whole agent id."


@admin.register(PlatformMetrics)
class PlatformMetricsAdmin(PeriodRowAdmin):
    list_display = ["period_start", "period_type", "org", "users_total", "users_active", "users_new",
                    "agents_active", "contracts_total", "contracts_completed", "revenue", "platform_fees",
                    "error_rate"]
