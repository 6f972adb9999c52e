"""The ops workflow: rules with their state (and a warning when what they watch was never recorded);
incidents unresolved first (open, acknowledged, silenced), most severe and newest first within, resolved
ones behind the status filter; and the steps acknowledge, silence (until a time) and resolve, each with a
note, from the incident's own page or as a bulk action, each through ``alerts.services.incidents``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from alerts.api.notifications import redact_url
from alerts.models import (
    ALLOWED_MOVES,
    SEVERITY_RANK,
    AlertIncident,
    AlertRule,
    AlertRuleGroupState,
    IllegalTransition,
    IncidentEvent,
    IncidentStatus,
    MaintenanceWindow,
    Notification,
    NotificationChannel,
    Silence,
)
from alerts.notifications import outbox
from alerts.services import incidents
from alerts.services.preview import DEFAULT_DAYS, PreviewUnavailable, RulePreview, preview_rule
from alerts.services.rule_values import rule_values
from alerts.services.rules import delete_rule, rule_changed, rule_warnings
from analytics.platform import charts
from analytics.platform.admin import ReadOnlyAdmin

COLOURS = {
    "firing": "#c62828", "pending": "#ef6c00", "inactive": "#2e7d32", "resolved": "#2e7d32", "error": "#6a1b9a",
    "open": "#c62828", "acknowledged": "#ef6c00", "silenced": "#757575",
    "critical": "#b71c1c", "error_severity": "#c62828", "warning": "#ef6c00", "info": "#1565c0",
}
RECENT_INCIDENTS = 20
PREVIEW_DAYS = (1, 7, 30)  # the rule page's range picker; the API takes 1-30
PREVIEW_CHARTED_GROUPS = 10
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
    readonly_fields = ("group", "status", "pending_since", "firing_since", "keep_firing_until", "last_value",
                       "last_evaluated_at", "incident")
    fields = readonly_fields
    verbose_name_plural = "state per group"

    def has_add_permission(self, request, obj=None):
        return False


def preview_chart(preview: RulePreview) -> dict:
    """A rule preview as a chart: the value per group (the first ones, those with incidents first), the threshold,
    and the incidents it would have opened shaded."""
    def label(group: dict) -> str:
        return ", ".join(f"{key}={value}" for key, value in sorted(group.items())) or preview.metric_name

    return charts.chart(
        *(charts.series(label(group.group), [(point["time"], point["value"]) for point in group.points])
          for group in preview.groups[:PREVIEW_CHARTED_GROUPS]),
        thresholds=[("threshold", preview.threshold)],
        bands=[(incident.started_at, incident.resolved_at, "incident") for incident in preview.incidents],
        now=preview.end,
        empty=f"No data of {preview.metric_name} in this range: widen it, or check the metric name and tags "
              "(a metric nobody records has no preview).")


def preview_days(value) -> int:
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_DAYS
    return days if days in PREVIEW_DAYS else DEFAULT_DAYS


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    change_form_template = "admin/alerts/alertrule/change_form.html"
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
                                  "reopen_after_seconds", "no_data"]}),
        ("State", {"fields": tuple(readonly_fields)}),
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

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("preview/", preview, name="alerts_alertrule_preview"),
                path("<path:object_id>/preview/", preview, name="alerts_alertrule_preview"),
                *super().get_urls()]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "preview_day_choices": PREVIEW_DAYS}
        days = extra_context["preview_days"] = preview_days(request.GET.get("preview_days"))
        rule = self.get_object(request, object_id) if object_id else None
        extra_context["preview_url"] = reverse("admin:alerts_alertrule_preview",
                                               args=[rule.pk] if rule is not None else [])
        if rule is not None and request.method == "GET":
            try:
                preview = preview_rule(rule, days=days)
            except PreviewUnavailable as error:
                extra_context["preview_unavailable"] = error.message
            else:
                extra_context["preview_chart"], extra_context["preview_summary"] = preview_chart(preview), \
                    preview.summary
        return super().changeform_view(request, object_id, form_url, extra_context)

    def preview_view(self, request, object_id=None):
        """The change form's fields as they stand, unsaved, previewed against the saved rule: JSON for the
        page's "Preview changes" button."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        saved = self.get_object(request, object_id) if object_id else None
        if object_id and saved is None:
            raise Http404
        allowed = self.has_change_permission(request, saved) if saved else self.has_add_permission(request)
        if not allowed:
            raise PermissionDenied
        form_class = self.get_form(request, saved, change=saved is not None)
        form = form_class(request.POST, instance=copy.copy(saved) if saved else None)
        if not form.is_valid():
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        try:
            preview = preview_rule(form.instance, days=preview_days(request.POST.get("preview_days")),
                                   compare_to=saved)
        except PreviewUnavailable as error:
            return JsonResponse({"errors": {error.field: [{"message": error.message}]}}, status=400)
        return JsonResponse({"summary": preview.summary, "chart": preview_chart(preview)})

    def save_model(self, request, obj, form, change):
        previous = copy.copy(AlertRule.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        resolved = rule_changed(obj, previous, actor=request.user.get_username())
        if resolved:
            self.message_user(request, f"{resolved} incident(s) of the old definition resolved.")
        for warning in rule_warnings(obj):
            self.message_user(request, f"Saved, but {warning}.", messages.WARNING)

    def delete_model(self, request, obj):
        delete_rule(obj, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            delete_rule(rule, actor=request.user.get_username())


# --- Incidents ----------------------------------------------------------------------------------

# The list's order, as expressions rather than annotations: the admin reuses an admin's ordering for every
# select of that model on other pages (an incident event's or a silence's "incident"), where an annotation
# of this admin's queryset is not there.
STATUS_ORDER = [IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.SILENCED, IncidentStatus.RESOLVED]
STATUS_RANK = Case(*[When(status=status, then=Value(rank)) for rank, status in enumerate(STATUS_ORDER)],
                   default=Value(len(STATUS_ORDER)), output_field=IntegerField())
SEVERITY_RANK_EXPRESSION = Case(*[When(severity=name, then=Value(rank)) for name, rank in SEVERITY_RANK.items()],
                                default=Value(0), output_field=IntegerField())
# The evaluator's moves, each measured (a missing value is "no data"); other rows are steps of a person,
# a silence's end or a rule's error, which measure nothing.
MEASURED_KINDS = {"pending", "recovered", "firing", "keep_firing", "breaching", "resolved"}


class NoteForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))


class SilenceForm(NoteForm):
    until = forms.SplitDateTimeField(widget=forms.SplitDateTimeWidget(date_attrs={"type": "date"},
                                                                      time_attrs={"type": "time", "step": "1"}),
                                     help_text="When the silence ends (UTC).")

    def clean_until(self):
        until = self.cleaned_data["until"]
        if until <= timezone.now():
            raise forms.ValidationError("Must be in the future.")
        return until


@dataclass(frozen=True)
class ManualStep:
    """A person's step on an incident: its form, the status it leads to, and the service function doing it."""

    title: str
    to_status: str
    form_class: type[forms.Form]
    perform: Callable[[int, dict, str], AlertIncident]


STEPS = {
    "acknowledge": ManualStep("Acknowledge", IncidentStatus.ACKNOWLEDGED, NoteForm,
                              lambda pk, data, actor: incidents.acknowledge(pk, actor=actor, note=data["note"])),
    "silence": ManualStep("Silence", IncidentStatus.SILENCED, SilenceForm,
                          lambda pk, data, actor: incidents.silence(pk, until=data["until"], actor=actor,
                                                                    note=data["note"])),
    "resolve": ManualStep("Resolve", IncidentStatus.RESOLVED, NoteForm,
                          lambda pk, data, actor: incidents.resolve(pk, actor=actor, note=data["note"])),
}


def allowed_steps(incident: AlertIncident) -> list[str]:
    return [name for name, step in STEPS.items() if step.to_status in ALLOWED_MOVES[incident.status]]


def describe_event(event: IncidentEvent) -> str:
    """What happened, in words: "acknowledged by ops: looking", "resolved by the evaluator: condition cleared"."""
    text = event.kind
    if event.actor:
        text += f" by {event.actor}"
    elif event.kind == IncidentStatus.RESOLVED:
        text += " by the evaluator"
    return f"{text}: {event.note}" if event.note else text


def event_value(event: IncidentEvent) -> str:
    if event.value is None and (event.actor or event.kind not in MEASURED_KINDS):
        return "–"
    return number(event.value)


class IncidentStatusFilter(admin.SimpleListFilter):
    """Unresolved incidents by default; resolved ones, one status, or all of them on request."""

    title = "status"
    parameter_name = "status"
    DEFAULT = "unresolved"

    def lookups(self, request, model_admin):
        return [(self.DEFAULT, "Unresolved"), *[(s.value, s.label) for s in STATUS_ORDER], ("all", "All")]

    def value(self):
        return super().value() or self.DEFAULT

    def queryset(self, request, queryset):
        value = self.value()
        if value == "all":
            return queryset
        if value in IncidentStatus.values:
            return queryset.filter(status=value)
        return queryset.unresolved()

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": (changelist.get_query_string(remove=[self.parameter_name]) if lookup == self.DEFAULT
                                 else changelist.get_query_string({self.parameter_name: lookup})),
                "display": title,
            }


class NotificationInline(admin.TabularInline):
    """The incident's notifications with their attempts (on the incident's page)."""

    model = Notification
    fields = ("created_at", "kind", "channel", "status", "attempts", "sent_at", "next_attempt_at",
              "last_duration_ms", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["created_at", "id"]

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel")



def incident_chart(incident: AlertIncident, rule: AlertRule, now=None) -> dict:
    """The rule's value for the incident's group around it, as the evaluator computed it, with the threshold
    and the incident's span shaded."""
    now = now or timezone.now()
    margin = max(timedelta(seconds=2 * rule.window_seconds), timedelta(minutes=30))
    start = incident.triggered_at - margin
    end = min(now, (incident.resolved_at or now) + margin)
    values = rule_values(rule, incident.group, start, end)
    return charts.chart(
        charts.series(f"{rule.aggregation} of {rule.metric_name} over {rule.window_seconds}s", values),
        thresholds=[("threshold", incident.threshold)],
        bands=[(incident.triggered_at, incident.resolved_at, "incident")], now=now,
        empty=f"No data of {rule.metric_name} around the trigger time: its raw events may be past the retention "
              "period.")


@admin.register(AlertIncident)
class AlertIncidentAdmin(admin.ModelAdmin):
    list_display = ["id", "rule_name", "group_display", "status_display", "severity_display", "value_vs_threshold",
                    "triggered_at", "acknowledged_at", "resolved_at", "silenced_until"]
    list_display_links = ["id", "rule_name"]
    list_filter = [IncidentStatusFilter, "severity", "org", "rule_name"]
    search_fields = ["rule_name", "group_key", "notes"]
    actions = ["acknowledge_incidents", "resolve_incidents", "silence_incidents"]
    readonly_fields = ("rule", "rule_name", "org", "group", "status_display", "severity_display", "condition",
                       "value_vs_threshold", "triggered_at", "acknowledged_at", "acknowledged_by", "resolved_at",
                       "resolved_by", "silenced_until", "notes", "timeline")
    fields = readonly_fields
    change_form_template = "admin/alerts/alertincident/change_form.html"
    inlines = [NotificationInline]

    def get_ordering(self, request):
        # Open, then acknowledged, then silenced (resolved last, when the filter shows them); most severe
        # first within; then newest. A click on a column header still wins.
        return [STATUS_RANK.asc(), SEVERITY_RANK_EXPRESSION.desc(), "-triggered_at", "-id"]

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        steps = [path(f"<path:object_id>/{step}/", self.admin_site.admin_view(self.step_view), {"step": step},
                      name=f"alerts_alertincident_{step}") for step in STEPS]
        return steps + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only: the page's buttons are the steps its status allows, not "Save".
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        incident = self.get_object(request, object_id)
        if incident is not None and self.has_change_permission(request, incident):
            extra_context["step_forms"] = [
                (reverse(f"admin:alerts_alertincident_{name}", args=[incident.pk]), STEPS[name].title,
                 STEPS[name].form_class(prefix=name)) for name in allowed_steps(incident)]
        if incident is not None and incident.rule is not None:
            extra_context["metric_chart"] = incident_chart(incident, incident.rule)
        return super().change_view(request, object_id, form_url, extra_context)

    def step_view(self, request, object_id, step):
        """One person's step on one incident, from the buttons of its page: done, or refused with a message."""
        incident = self.get_object(request, object_id)
        if incident is None:
            raise Http404
        if not self.has_change_permission(request, incident):
            raise PermissionDenied
        manual = STEPS[step]
        change_page = reverse("admin:alerts_alertincident_change", args=[incident.pk])
        form = manual.form_class(request.POST or None, prefix=step)
        if request.method == "POST" and form.is_valid():
            try:
                manual.perform(incident.pk, form.cleaned_data, request.user.get_username())
            except (IllegalTransition, incidents.InvalidSilence) as error:
                self.message_user(request, str(error), messages.WARNING)
            else:
                self.message_user(request, f"{manual.title}: {incident}.", messages.SUCCESS)
            return HttpResponseRedirect(change_page)
        context = {**self.admin_site.each_context(request), "title": f"{manual.title} {incident}", "form": form,
                   "incident": incident, "opts": self.model._meta, "change_page": change_page,
                   "submit": manual.title}
        return TemplateResponse(request, "admin/alerts/alertincident/step.html", context)

    @admin.display(description="group")
    def group_display(self, obj):
        return ", ".join(f"{k}={v}" for k, v in sorted(obj.group.items())) or "–"

    @admin.display(description="status", ordering=STATUS_RANK)
    def status_display(self, obj):
        return coloured(obj.status)

    @admin.display(description="severity", ordering=SEVERITY_RANK_EXPRESSION)
    def severity_display(self, obj):
        return severity_badge(obj.severity)

    @admin.display(description="value vs threshold")
    def value_vs_threshold(self, obj):
        return f"{number(obj.value)} ({obj.condition})" if obj.condition else f"{number(obj.value)} / {obj.threshold:g}"

    @admin.display(description="timeline")
    def timeline(self, obj):
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((when(e.at), describe_event(e), f"{e.from_status or '–'} → {e.to_status or '–'}",
              event_value(e), "–" if e.threshold is None else f"{e.threshold:g}")
             for e in obj.events.order_by("at", "id")[:TIMELINE_ROWS]),
        )
        return format_html(
            "<table><thead><tr><th>at</th><th>what happened</th><th>status</th><th>value</th>"
            "<th>threshold</th></tr></thead><tbody>{}</tbody></table>", rows,
        )

    def _run_action(self, request, queryset, step):
        """Show the step's form (note, until) for the chosen incidents; on submit, act on each and report."""
        manual = STEPS[step]
        if "apply" in request.POST:
            form = manual.form_class(request.POST)
            if form.is_valid():
                done, refused = 0, []
                for incident in queryset:
                    try:
                        manual.perform(incident.pk, form.cleaned_data, request.user.get_username())
                        done += 1
                    except (IllegalTransition, incidents.InvalidSilence) as error:
                        refused.append(str(error))
                if done:
                    self.message_user(request, f"{manual.title}: {done} incident(s).", messages.SUCCESS)
                for reason in refused:
                    self.message_user(request, reason, messages.WARNING)
                return None
        else:
            form = manual.form_class()
        context = {
            **self.admin_site.each_context(request), "title": manual.title, "form": form, "incidents": queryset,
            "action": request.POST.get("action"), "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/alerts/incident_action.html", context)

    @admin.action(description="Acknowledge selected incidents")
    def acknowledge_incidents(self, request, queryset):
        return self._run_action(request, queryset, "acknowledge")

    @admin.action(description="Resolve selected incidents (with a note)")
    def resolve_incidents(self, request, queryset):
        return self._run_action(request, queryset, "resolve")

    @admin.action(description="Silence selected incidents (until a time)")
    def silence_incidents(self, request, queryset):
        return self._run_action(request, queryset, "silence")


@admin.register(IncidentEvent)
class IncidentEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "rule", "incident", "from_status", "to_status", "value", "threshold", "actor",
                    "note", "claimed_at"]
    list_filter = ["kind"]
    list_select_related = ["rule", "incident"]
    date_hierarchy = "at"


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    """General silences are made and ended here (by rule, severity, labels); an incident's own silence, made
    by its Silence step, is shown read-only."""

    list_display = ["__str__", "incident", "rule", "severity", "matchers", "org", "starts_at", "until", "ended_at",
                    "created_by", "note"]
    list_select_related = ["incident", "rule", "org"]
    list_filter = ["severity", "org"]
    fields = ["org", "rule", "severity", "matchers", "starts_at", "until", "note", "incident", "created_by",
              "ended_at"]
    actions = ["end_silences"]

    def get_changeform_initial_data(self, request):
        return {"starts_at": timezone.now(), "matchers": {}}

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.incident_id:
            return self.fields
        return ["incident", "created_by", "ended_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    @admin.action(description="End the selected silences now")
    def end_silences(self, request, queryset):
        now = timezone.now()
        ended = queryset.filter(incident__isnull=True, ended_at__isnull=True, until__gt=now).update(ended_at=now)
        self.message_user(request, f"{ended} silence(s) ended.", messages.SUCCESS)


# --- Notifications -------------------------------------------------------------------------------


class ChannelForm(forms.ModelForm):
    # A webhook's signing key is written, never shown again; left empty on edit, it stays as it was.
    secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False), help_text=(
        "Webhook only: the HMAC-SHA256 key of the X-ToolWeaver-Signature header. Leave empty to keep it."))

    class Meta:
        model = NotificationChannel
        fields = ["name", "org", "kind", "config", "secret", "rules", "default_for", "repeat_interval_seconds",
                  "group_wait_seconds", "timeout_seconds", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A Slack webhook's URL is its secret: the page shows it reduced to its host, as the API does.
        config = self.instance.config if self.instance.pk else None
        if self.instance.kind == NotificationChannel.Kind.SLACK and isinstance(config, dict) and "url" in config:
            self.initial["config"] = {**config, "url": redact_url(config["url"])}

    def clean_config(self):
        """The reduced URL sent back unchanged keeps the stored one; a new URL replaces it."""
        config = self.cleaned_data["config"]
        stored = self.instance.config if self.instance.pk else None
        if (isinstance(config, dict) and isinstance(stored, dict) and "url" in stored
                and config.get("url") == redact_url(stored["url"])):
            config = {**config, "url": stored["url"]}
        return config

    def clean_secret(self):
        return self.cleaned_data["secret"] or (self.instance.secret if self.instance.pk else "")


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "org", "enabled", "default_for", "rule_count", "repeat_interval_seconds"]
    list_filter = ["kind", "enabled", "org"]
    search_fields = ["name"]
    filter_horizontal = ["rules"]
    actions = ["send_test_notification"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("org").annotate(rule_total=Count("rules"))

    @admin.display(description="rules", ordering="rule_total")
    def rule_count(self, obj):
        return obj.rule_total

    @admin.action(description="Send a test notification")
    def send_test_notification(self, request, queryset):
        for channel in queryset:
            row = outbox.send_test(channel)
            if row.status == Notification.Status.SENT:
                self.message_user(request, f"{channel}: test notification sent.", messages.SUCCESS)
            else:
                self.message_user(request, f"{channel}: the test failed: {row.last_error}", messages.ERROR)


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    list_display = ["name", "org", "rule", "matchers", "schedule", "note"]
    list_select_related = ["org", "rule"]
    fields = ["name", "org", "rule", "matchers", "starts_at", "ends_at", "weekdays", "start_time", "duration_minutes",
              "timezone", "note", "created_by"]
    readonly_fields = ["created_by"]

    @admin.display(description="when")
    def schedule(self, obj):
        if obj.recurring:
            days = ", ".join(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[day] for day in obj.weekdays)
            return f"{days} {obj.start_time:%H:%M} {obj.timezone}, {obj.duration_minutes} min"
        if obj.starts_at and obj.ends_at:
            return f"{obj.starts_at:%Y-%m-%d %H:%M} to {obj.ends_at:%Y-%m-%d %H:%M}"
        return "–"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "channel", "incident", "status", "attempts", "sent_at", "next_attempt_at",
                    "last_duration_ms", "last_error"]
    list_filter = ["status", "kind", "channel"]
    list_select_related = ["channel", "incident"]
    date_hierarchy = "created_at"
