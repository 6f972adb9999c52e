"""The ops workflow: rules with their state, incidents most severe and newest first, and the actions
acknowledge, resolve (with a note) and silence (until a time), each through ``alerts.services.incidents``."""

from __future__ import annotations

import copy

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from alerts.models import (
    AlertIncident,
    AlertRule,
    AlertRuleGroupState,
    IllegalTransition,
    IncidentEvent,
    Silence,
)
from alerts.services import incidents
from alerts.services.rules import delete_rule, rule_changed
from analytics.platform.admin import ReadOnlyAdmin

COLOURS = {
    "firing": "#c62828", "pending": "#ef6c00", "inactive": "#2e7d32", "resolved": "#2e7d32", "error": "#6a1b9a",
    "open": "#c62828", "acknowledged": "#ef6c00", "silenced": "#757575",
    "critical": "#b71c1c", "error_severity": "#c62828", "warning": "#ef6c00", "info": "#1565c0",
}
RECENT_INCIDENTS = 20
TIMELINE_ROWS = 500


def coloured(text: str, colour_key: str | None = None):
    return format_html('<strong style="color: {}">{}</strong>', COLOURS.get(colour_key or text, "#000"), text)


def severity_badge(severity: str):
    return coloured(severity, "error_severity" if severity == "error" else severity)


def when(moment) -> str:
    return "–" if moment is None else timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def number(value) -> str:
    return "no data" if value is None else f"{value:.6g}"


# --- Rules -----------------------------------------------------------------------------------


class GroupStateInline(admin.TabularInline):
    model = AlertRuleGroupState
    extra = 0
    can_delete = False
    fields = ["group", "status", "pending_since", "firing_since", "keep_firing_until", "last_value",
              "last_evaluated_at", "incident"]
    readonly_fields = fields
    verbose_name_plural = "state per group"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "org", "condition_display", "group_by", "severity_display", "state_display",
                    "enabled", "trigger_count", "last_triggered_at", "last_evaluated_at"]
    list_filter = ["enabled", "severity", "org", "metric_name"]
    search_fields = ["name", "description", "metric_name"]
    inlines = [GroupStateInline]
    readonly_fields = ["state_display", "last_error", "error_since", "trigger_count", "last_triggered_at",
                       "last_evaluated_at", "recent_incidents"]
    fieldsets = [
        (None, {"fields": ["org", "name", "description", "enabled", "severity", "labels"]}),
        ("What it watches", {"fields": ["metric_name", "aggregation", "window_seconds", "tags", "group_by"]}),
        ("Condition", {"fields": ["condition_operator", "threshold", "duration_seconds", "keep_firing_seconds",
                                  "no_data"]}),
        ("State", {"fields": readonly_fields}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("org").annotate(
            firing_groups=Count("group_states", filter=Q(group_states__status="firing")),
            pending_groups=Count("group_states", filter=Q(group_states__status="pending")),
        )

    @admin.display(description="condition", ordering="metric_name")
    def condition_display(self, obj):
        return f"{obj.condition} for {obj.duration_seconds}s over {obj.window_seconds}s"

    @admin.display(description="severity", ordering="severity")
    def severity_display(self, obj):
        return severity_badge(obj.severity)

    @admin.display(description="state")
    def state_display(self, obj):
        if obj.pk is None:
            return "–"
        if obj.last_error:
            return coloured("error")
        firing = getattr(obj, "firing_groups", None)
        pending = getattr(obj, "pending_groups", None)
        if firing is None:
            state = obj.state()
            return coloured(state)
        if firing:
            return coloured(f"firing ({firing})" if obj.group_by else "firing", "firing")
        if pending:
            return coloured(f"pending ({pending})" if obj.group_by else "pending", "pending")
        return coloured("inactive")

    @admin.display(description=f"recent incidents (last {RECENT_INCIDENTS})")
    def recent_incidents(self, obj):
        if obj.pk is None:
            return "–"
        rows = format_html_join(
            "", '<tr><td><a href="../../../alertincident/{}/change/">#{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
                "<td>{}</td><td>{}</td><td>{}</td></tr>",
            ((i.pk, i.pk, ", ".join(f"{k}={v}" for k, v in sorted(i.group.items())) or "–", coloured(i.status),
              severity_badge(i.severity), number(i.value), when(i.triggered_at), when(i.resolved_at))
             for i in obj.incidents.order_by("-triggered_at", "-id")[:RECENT_INCIDENTS]),
        )
        return format_html(
            "<table><thead><tr><th>incident</th><th>group</th><th>status</th><th>severity</th><th>value</th>"
            "<th>triggered</th><th>resolved</th></tr></thead><tbody>{}</tbody></table>", rows,
        )

    def save_model(self, request, obj, form, change):
        previous = copy.copy(AlertRule.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        resolved = rule_changed(obj, previous, actor=request.user.get_username())
        if resolved:
            self.message_user(request, f"{resolved} incident(s) of the old definition resolved.")

    def delete_model(self, request, obj):
        delete_rule(obj, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            delete_rule(rule, actor=request.user.get_username())


# --- Incidents ----------------------------------------------------------------------------------


class NoteForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class SilenceForm(NoteForm):
    until = forms.SplitDateTimeField(widget=forms.SplitDateTimeWidget(date_attrs={"type": "date"},
                                                                      time_attrs={"type": "time", "step": 1}),
                                     help_text="When the silence ends (UTC).")

    def clean_until(self):
        until = self.cleaned_data["until"]
        if until <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return until


@admin.register(AlertIncident)
class AlertIncidentAdmin(admin.ModelAdmin):
    list_display = ["id", "rule_name", "group_display", "status_display", "severity_display", "value_vs_threshold",
                    "triggered_at", "acknowledged_at", "resolved_at", "silenced_until"]
    list_display_links = ["id", "rule_name"]
    list_filter = ["status", "severity", "org", "rule_name"]
    search_fields = ["rule_name", "group_key", "notes"]
    actions = ["acknowledge_incidents", "resolve_incidents", "silence_incidents"]
    fields = ["rule", "rule_name", "org", "group", "status_display", "severity_display", "condition",
              "value_vs_threshold", "triggered_at", "acknowledged_at", "acknowledged_by", "resolved_at",
              "resolved_by", "silenced_until", "notes", "timeline"]
    readonly_fields = fields

    def get_queryset(self, request):
        # Most severe first, then newest (a click on a column header still wins). Not super(): it orders
        # by get_ordering() before the rank it names is annotated.
        return AlertIncident.objects.most_urgent_first()

    def get_ordering(self, request):
        return ["-severity_rank", "-triggered_at", "-id"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="group")
    def group_display(self, obj):
        return ", ".join(f"{k}={v}" for k, v in sorted(obj.group.items())) or "–"

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        return coloured(obj.status)

    @admin.display(description="severity", ordering="severity_rank")
    def severity_display(self, obj):
        return severity_badge(obj.severity)

    @admin.display(description="value vs threshold")
    def value_vs_threshold(self, obj):
        return f"{number(obj.value)} ({obj.condition})" if obj.condition else f"{number(obj.value)} / {obj.threshold:g}"

    @admin.display(description="timeline")
    def timeline(self, obj):
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((when(e.at), e.kind, f"{e.from_status or '–'} → {e.to_status or '–'}", number(e.value),
              "–" if e.threshold is None else f"{e.threshold:g}", e.actor or "evaluator", e.note)
             for e in obj.events.order_by("at", "id")[:TIMELINE_ROWS]),
        )
        return format_html(
            "<table><thead><tr><th>at</th><th>what</th><th>status</th><th>value</th><th>threshold</th>"
            "<th>who</th><th>note</th></tr></thead><tbody>{}</tbody></table>", rows,
        )

    def _run_action(self, request, queryset, *, title, form_class, perform):
        """Show the form (note, until) for the chosen incidents; on submit, act on each and report."""
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                done, refused = 0, []
                for incident in queryset:
                    try:
                        perform(incident, form.cleaned_data, request.user.get_username())
                        done += 1
                    except (IllegalTransition, incidents.InvalidSilence) as error:
                        refused.append(str(error))
                if done:
                    self.message_user(request, f"{title}: {done} incident(s).", messages.SUCCESS)
                for reason in refused:
                    self.message_user(request, reason, messages.WARNING)
                return None
        else:
            form = form_class()
        context = {
            **self.admin_site.each_context(request), "title": title, "form": form, "incidents": queryset,
            "action": request.POST.get("action"), "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/alerts/incident_action.html", context)

    @admin.action(description="Acknowledge selected incidents")
    def acknowledge_incidents(self, request, queryset):
        return self._run_action(
            request, queryset, title="Acknowledge", form_class=NoteForm,
            perform=lambda i, data, actor: incidents.acknowledge(i.pk, actor=actor, note=data["note"]),
        )

    @admin.action(description="Resolve selected incidents (with a note)")
    def resolve_incidents(self, request, queryset):
        return self._run_action(
            request, queryset, title="Resolve", form_class=NoteForm,
            perform=lambda i, data, actor: incidents.resolve(i.pk, actor=actor, note=data["note"]),
        )

    @admin.action(description="Silence selected incidents (until a time)")
    def silence_incidents(self, request, queryset):
        return self._run_action(
            request, queryset, title="Silence", form_class=SilenceForm,
            perform=lambda i, data, actor: incidents.silence(i.pk, until=data["until"], actor=actor,
                                                            note=data["note"]),
        )


@admin.register(IncidentEvent)
class IncidentEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "rule", "incident", "from_status", "to_status", "value", "threshold", "actor",
                    "note", "claimed_at"]
    list_filter = ["kind"]
    list_select_related = ["rule", "incident"]
    date_hierarchy = "at"


@admin.register(Silence)
class SilenceAdmin(ReadOnlyAdmin):
    list_display = ["incident", "starts_at", "until", "ended_at", "created_by", "note"]
    list_select_related = ["incident"]

