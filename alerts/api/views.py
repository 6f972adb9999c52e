"""Alert rules and incidents (API.md, Alerts). Each view is thin over ``alerts.services``.

A token sees and writes its org's rules and incidents only; the platform rules (org null, like the
default "service unhealthy") and their incidents are visible to staff only. Another org's object: 404.
"""

from __future__ import annotations

import copy

import django_filters
from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.response import Response

from alerts.api.serializers import (
    AlertRuleSerializer,
    IncidentDetailSerializer,
    IncidentSerializer,
    NoteSerializer,
    SilenceSerializer,
)
from alerts.models import AlertIncident, AlertRule, IllegalTransition, IncidentStatus, Severity
from alerts.services import incidents
from alerts.services.rules import delete_rule, rule_changed
from analytics.platform.auth import TokenPrincipal
from analytics.platform.conventions import OrgScopeMixin
from analytics.platform.errors import Conflict, field_error


def actor_of(request) -> str:
    """Who acted, as the timeline shows it."""
    if isinstance(request.user, TokenPrincipal):
        token = request.user.token
        return f"token {token.name or token.pk} ({token.prefix}…)"
    return request.user.get_username()


class RuleScope(OrgScopeMixin):
    serializer_class = AlertRuleSerializer

    def get_queryset(self):
        return self.scope(AlertRule.objects.select_related("org").prefetch_related("group_states")).order_by("id")


@extend_schema_view(
    get=extend_schema(summary="Alert rules of the caller's org (staff: all, or ?org=)"),
    post=extend_schema(summary="Create an alert rule"),
)
class AlertRuleListView(RuleScope, generics.ListCreateAPIView):
    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.method == "POST":
            body = self.request.data if isinstance(self.request.data, dict) else {}
            context["org"] = self.write_org(body.get("org_id"))
        return context

    def perform_create(self, serializer):
        try:
            with transaction.atomic():
                serializer.save(org=serializer.context["org"])
        except IntegrityError:  # the same name, created meanwhile
            raise field_error("name", "This org already has a rule with this name.") from None


@extend_schema_view(
    get=extend_schema(summary="An alert rule"),
    patch=extend_schema(summary="Change an alert rule"),
    delete=extend_schema(summary="Delete an alert rule (its incidents are resolved and kept)"),
)
class AlertRuleDetailView(RuleScope, generics.RetrieveUpdateDestroyAPIView):
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def perform_update(self, serializer):
        previous = copy.copy(serializer.instance)
        try:
            with transaction.atomic():
                rule = serializer.save()
                rule_changed(rule, previous, actor=actor_of(self.request))
        except IntegrityError:
            raise field_error("name", "This org already has a rule with this name.") from None

    def perform_destroy(self, instance):
        delete_rule(instance, actor=actor_of(self.request))


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=IncidentStatus.choices, help_text="Repeatable. Default: every unresolved incident.")
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, help_text="Repeatable.")
    rule = django_filters.NumberFilter(field_name="rule_id", help_text="A rule id.")

    class Meta:
        model = AlertIncident
        fields = ["status", "severity", "rule"]


class IncidentScope(OrgScopeMixin):
    def get_queryset(self):
        return self.scope(AlertIncident.objects.all())


@extend_schema_view(get=extend_schema(summary="Incidents, most severe and newest first (default: unresolved)"))
class IncidentListView(IncidentScope, generics.ListAPIView):
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter

    def get_queryset(self):
        incidents_ = super().get_queryset().most_urgent_first()
        if "status" not in self.request.query_params:
            incidents_ = incidents_.unresolved()
        return incidents_


@extend_schema_view(get=extend_schema(summary="An incident with its timeline"))
class IncidentDetailView(IncidentScope, generics.RetrieveAPIView):
    serializer_class = IncidentDetailSerializer


class IncidentActionView(IncidentScope, generics.GenericAPIView):
    serializer_class = IncidentSerializer
    body_serializer = NoteSerializer

    def act(self, incident, body, actor):
        raise NotImplementedError

    def post(self, request, pk):
        incident = self.get_object()
        body = self.body_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            incident = self.act(incident, body.validated_data, actor_of(request))
        except IllegalTransition as error:
            raise Conflict(str(error)) from None
        except incidents.InvalidSilence as error:
            raise field_error(error.field, str(error)) from None
        return Response(IncidentSerializer(incident).data)


def _action_schema(summary: str, body):
    return extend_schema(
        summary=summary, request=body,
        responses={200: IncidentSerializer, 404: OpenApiResponse(description="No such incident in the org."),
                   409: OpenApiResponse(description="Not allowed from the incident's current status.")},
    )


class AcknowledgeView(IncidentActionView):
    @_action_schema("Acknowledge an open or silenced incident", NoteSerializer)
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, incident, body, actor):
        return incidents.acknowledge(incident.pk, actor=actor, note=body["note"])


class ResolveView(IncidentActionView):
    @_action_schema("Resolve an incident by hand (the rule waits its duration again)", NoteSerializer)
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, incident, body, actor):
        return incidents.resolve(incident.pk, actor=actor, note=body["note"])


class SilenceView(IncidentActionView):
    body_serializer = SilenceSerializer

    @_action_schema("Silence an incident until a time", SilenceSerializer)
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, incident, body, actor):
        return incidents.silence(incident.pk, until=body["until"], actor=actor, note=body["note"])
