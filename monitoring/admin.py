from datetime import timedelta

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from analytics.platform import charts
from analytics.platform.admin import ReadOnlyAdmin
from monitoring.models import HealthCheck, Service, ServiceDailySLA, ServiceTransition
from monitoring.services import sla
from monitoring.services.reports import service_sla, uptime_percentages
from monitoring.services.runner import run_services_now

STATUS_COLOURS = {"healthy": "#2e7d32", "degraded": "#ef6c00", "unhealthy": "#c62828", "unknown": "#757575"}
HISTORY_ROWS = 10  # the charts above show the rest
UPTIME_BAR_DAYS = 30
RESPONSE_TIME_HOURS = 24
UPTIME_PERIODS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def coloured_status(status: str):
    return format_html('<strong style="color: {}">{}</strong>', STATUS_COLOURS[status], status)


def percent(value):
    return "–" if value is None else f"{value:.3f}%"


def uptime_chart(service: Service, now=None) -> dict:
    """One bar per day of the last UPTIME_BAR_DAYS: the day's uptime, green when it met the SLA target."""
    now = now or timezone.now()
    start = sla.day_start(now) - timedelta(days=UPTIME_BAR_DAYS - 1)
    days = service_sla(service, start, now, now=now, exact=False).daily
    colours = [STATUS_COLOURS["unknown"] if day.uptime_percentage is None else
               STATUS_COLOURS["healthy"] if day.compliant(service.sla_target) else STATUS_COLOURS["unhealthy"]
               for day in days]
    bars = charts.series("uptime", [(day.start.date().isoformat(), day.uptime_percentage) for day in days],
                         colors=colours)
    return charts.chart(bars, kind="bar", unit="%", categories=True, thresholds=[("SLA target", service.sla_target)],
                        empty="No checks in the last 30 days: enable the service, or run its check now (action "
                              "“Run check now”).")


def response_time_chart(service: Service, now=None) -> dict:
    """Every check's response time over the last RESPONSE_TIME_HOURS (failed checks have none)."""
    now = now or timezone.now()
    checks = (service.checks.filter(checked_at__gte=now - timedelta(hours=RESPONSE_TIME_HOURS))
              .order_by("checked_at").values_list("checked_at", "response_time_ms"))
    thresholds = [("degraded above", service.degraded_response_time_ms)] if service.degraded_response_time_ms else []
    return charts.chart(charts.series("response time", checks), unit="ms", thresholds=thresholds,
                        empty="No successful check in the last 24 hours: see the last checks below.")


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "service_type", "check_kind", "current_status", "last_checked_at",
                    "uptime_24h", "uptime_7d", "uptime_30d", "enabled"]
    list_filter = ["service_type", "check_kind", "enabled"]
    search_fields = ["name", "description"]
    actions = ["run_check_now"]
    readonly_fields = ["current_status", "consecutive_failures", "last_checked_at", "last_response_time_ms",
                       "last_error", "next_check_at", "check_history"]
    fieldsets = [
        (None, {"fields": ["name", "description", "service_type", "enabled"]}),
        ("Check", {"fields": ["check_kind", "target", "http_method", "expected_status", "body_keyword"]}),
        ("Rules", {"fields": ["interval_seconds", "timeout_seconds", "degraded_response_time_ms",
                              "failures_before_unhealthy", "sla_target"]}),
        ("State", {"fields": tuple(readonly_fields)}),
    ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        service = self.get_object(request, object_id)
        if service is not None:
            extra_context = {**(extra_context or {}), "uptime_chart": uptime_chart(service),
                             "response_time_chart": response_time_chart(service)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="status")
    def current_status(self, obj):
        return coloured_status(obj.current_status())

    def get_changelist_instance(self, request):
        # The uptimes of a page's services are computed together (two queries), not once per row.
        changelist = super().get_changelist_instance(request)
        services = list(changelist.result_list)
        uptimes = uptime_percentages(services, list(UPTIME_PERIODS.values()))
        for service in services:
            service.uptimes = dict(zip(UPTIME_PERIODS, uptimes[service.pk], strict=True))
        return changelist

    def _uptime(self, obj, period):
        return percent(getattr(obj, "uptimes", {}).get(period))

    @admin.display(description="uptime 24h")
    def uptime_24h(self, obj):
        return self._uptime(obj, "24h")

    @admin.display(description="uptime 7d")
    def uptime_7d(self, obj):
        return self._uptime(obj, "7d")

    @admin.display(description="uptime 30d")
    def uptime_30d(self, obj):
        return self._uptime(obj, "30d")

    @admin.display(description=f"check history (last {HISTORY_ROWS})")
    def check_history(self, obj):
        if obj.pk is None:
            return "–"
        checks = obj.checks.order_by("-checked_at")[:HISTORY_ROWS]
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((timezone.localtime(c.checked_at).strftime("%Y-%m-%d %H:%M:%S"), coloured_status(c.status),
              "–" if c.response_time_ms is None else f"{c.response_time_ms:.1f} ms", c.consecutive_failures,
              c.error) for c in checks),
        )
        return format_html(
            "<table><thead><tr><th>checked at</th><th>status</th><th>response time</th>"
            "<th>failures in a row</th><th>error</th></tr></thead><tbody>{}</tbody></table>", rows,
        )

    @admin.action(description="Run check now")
    def run_check_now(self, request, queryset):
        for result in run_services_now(queryset):
            detail = f": {result.error}" if result.error else ""
            self.message_user(request, f"{result.service.name}: {result.status}{detail}")


@admin.register(HealthCheck)
class HealthCheckAdmin(ReadOnlyAdmin):
    list_display = ["service", "checked_at", "status_display", "response_time_ms", "consecutive_failures", "error"]
    list_filter = ["status", "service"]
    date_hierarchy = "checked_at"
    list_select_related = ["service"]

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return coloured_status(obj.status)


@admin.register(ServiceTransition)
class ServiceTransitionAdmin(ReadOnlyAdmin):
    list_display = ["service", "at", "from_status", "to_status", "reason", "claimed_at"]
    list_filter = ["to_status", "service"]
    list_select_related = ["service"]


@admin.register(ServiceDailySLA)
class ServiceDailySLAAdmin(ReadOnlyAdmin):
    list_display = ["service", "day", "uptime", "downtime_incidents", "downtime_minutes", "avg_response_time_ms",
                    "p95_response_time_ms", "sla_target"]
    list_filter = ["service"]
    date_hierarchy = "day"
    list_select_related = ["service"]

    @admin.display(description="uptime")
    def uptime(self, obj):
        return percent(obj.uptime_percentage)

    @admin.display(description="downtime (min)")
    def downtime_minutes(self, obj):
        return round(obj.unhealthy_seconds / 60, 1)
