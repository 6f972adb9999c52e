from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone

from analytics.models import ApiToken, MetricEvent, MetricSeries, MetricSeriesTag, MetricType, Organization
from analytics.platform import charts
from analytics.platform.admin import CappedCountPaginator, ReadOnlyAdmin
from analytics.platform.scope import PLATFORM
from analytics.platform.windows import Window
from analytics.services import metrics_query


class ApiTokenInline(admin.TabularInline):
    model = ApiToken
    extra = 0
    can_delete = False
    readonly_fields = ("name", "prefix", "read_only", "created_at", "last_used_at", "revoked_at")
    fields = readonly_fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [ApiTokenInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["__str__", "org", "read_only", "created_at", "last_used_at", "status"]
    list_filter = ["read_only", ("revoked_at", admin.EmptyFieldListFilter), "org"]
    search_fields = ["name", "prefix", "org__slug"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["org", "name", "read_only"]
        return ["org", "name", "read_only", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["org"] if obj else [])

    @admin.display(description="status")
    def status(self, obj):
        return "revoked" if obj.is_revoked else "active"

    def save_model(self, request, obj, form, change):
        raw = None if change else obj.set_new_secret()
        super().save_model(request, obj, form, change)
        if raw:
            messages.warning(request, f"The new token is {raw} — copy it now: it is stored only as a hash.")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = queryset.revoke()
        self.message_user(request, f"{count} token(s) revoked.")


# --- Metrics -----------------------------------------------------------------------


class RecentFilter(admin.SimpleListFilter):
    """A time-range filter that costs one indexed range condition (no date scan, unlike date_hierarchy)."""

    title = "recorded"
    parameter_name = "recent"
    RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
              "30d": timedelta(days=30)}

    def lookups(self, request, model_admin):
        return [(key, f"last {key}") for key in self.RANGES]

    def queryset(self, request, queryset):
        if self.value() in self.RANGES:
            return queryset.filter(timestamp__gte=timezone.now() - self.RANGES[self.value()])
        return queryset


class MetricSeriesTagInline(admin.TabularInline):
    model = MetricSeriesTag
    extra = 0
    can_delete = False
    readonly_fields = ["key", "value"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MetricSeries)
class MetricSeriesAdmin(admin.ModelAdmin):
    list_display = ["name", "org", "metric_type", "unit", "tag_list", "last_value", "last_seen", "events_per_minute"]
    list_filter = ["metric_type", "org"]
    search_fields = ["name", "tag_rows__value"]
    readonly_fields = ["org", "name", "metric_type", "unit", "source", "tags", "first_seen", "last_seen",
                       "last_value"]
    inlines = [MetricSeriesTagInline]
    list_select_related = ["org"]  # nullable: the default select_related() would not follow it
    ordering = ["name"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        series = self.get_object(request, object_id)
        if series is not None:
            chosen = request.GET.get("range", "24h")
            extra_context = {**(extra_context or {}), "ranges": list(SERIES_RANGES),
                             "range": chosen if chosen in SERIES_RANGES else "24h",
                             "series_chart": series_chart(series, chosen)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="tags")
    def tag_list(self, obj):
        return ", ".join(f"{key}={value}" for key, value in sorted(obj.tags.items())) or "—"

    def get_changelist_instance(self, request):
        # The event counts of a page's series come from one grouped query, not one count per row.
        changelist = super().get_changelist_instance(request)
        series = list(changelist.result_list)
        since = timezone.now() - timedelta(hours=1)
        counts = dict(MetricEvent.objects.filter(series__in=[s.pk for s in series], timestamp__gte=since)
                      .values("series_id").annotate(events=Count("id")).values_list("series_id", "events"))
        for one in series:
            one.events_last_hour = counts.get(one.pk, 0)
        return changelist

    @admin.display(description="events/min (last hour)")
    def events_per_minute(self, obj):
        events = getattr(obj, "events_last_hour", None)
        return "–" if events is None else round(events / 60, 2)


# The metric series page's chart: range → (window, bucket interval).
SERIES_RANGES = {"24h": (timedelta(hours=24), "15m"), "7d": (timedelta(days=7), "1h"),
                 "30d": (timedelta(days=30), "6h")}


def series_chart(series: MetricSeries, range_key: str, now=None) -> dict:
    """The series over the range, as the API's time-series endpoint answers it: counters summed per bucket,
    other types averaged with their p95."""
    window_length, interval = SERIES_RANGES.get(range_key, SERIES_RANGES["24h"])
    now = now or timezone.now()
    window = Window(now - window_length, now)
    scope = PLATFORM if series.org is None else series.org
    aggregates = ["sum"] if series.metric_type == MetricType.COUNTER else ["avg", "p95"]
    answered = metrics_query.time_series_of(series.name, window, interval=interval, aggregates=aggregates,
                                            org=scope, tags=series.tags or None)
    lines = [charts.series(f"{aggregate} per {interval}", line.points) for aggregate, line in answered.items()]
    return charts.chart(*lines, unit=series.unit, empty=(
        f"No events of {series.name} in the last {range_key}: widen the range, or send events to "
        "POST /api/v1/analytics/metrics/record."))


@admin.register(MetricEvent)
class MetricEventAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "series", "value", "org", "event_id"]
    list_filter = [RecentFilter, "series__metric_type", "org"]
    search_fields = ["series__name", "event_id"]
    list_select_related = ["series", "org"]
    paginator = CappedCountPaginator
    show_full_result_count = False
    ordering = ["-timestamp"]

from analytics import admin_activity, admin_skills  # noqa: E402,F401  (they register their pages)
