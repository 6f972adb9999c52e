"""Alert rules and incidents (API.md, Alerts). Each view is thin over ``alerts.services``.

A token sees and writes its org's rules and incidents only; the platform rules (org null, like the
default "service unhealthy") and their incidents are visible to staff only. Another org's object: 404.

Rules are a model form (``AlertRuleSerializer``); a create or change answers the rule with its
``warnings`` (``SavedAlertRuleSerializer``), and a name the org already uses is a 409. The incident list's
filters (``IncidentQuery``) and the actions' bodies (``IncidentNote``, ``IncidentSilence``) are pydantic
contracts, each declared once.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Annotated, Literal

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from pydantic import Field
from rest_framework import generics, status
from rest_framework.response import Response

from alerts.api.serializers import (
    AlertRuleSerializer,
    DuplicateRuleName,
    IncidentDetailSerializer,
    IncidentNote,
    IncidentSerializer,
    IncidentSilence,
    SavedAlertRuleSerializer,
)
from alerts.models import AlertIncident, AlertRule, IllegalTransition, IncidentStatus, Severity
from alerts.services import incidents
from alerts.services.rules import delete_rule, rule_changed
from analytics.platform.auth import TokenPrincipal
from analytics.platform.contracts import Bounded, ErrorDetail, OrgQuery, endpoint, error_responses
from analytics.platform.conventions import OrgScopeMixin
from analytics.platform.errors import Conflict, field_error

MAX_ID = 2**63 - 1  # ids are 64-bit (BigAutoField)


def actor_of(request) -> str:
    """Who acted, as the timeline shows it."""
    if isinstance(request.user, TokenPrincipal):
        token = request.user.token
        return f"token {token.name or token.pk} ({token.prefix}…)"
    return request.user.get_username()


SAVED_DESCRIPTION = ("The answer carries `warnings`: what is odd about the rule though accepted (e.g. no samples "
                     "of its metric have been recorded yet). A name the org already uses answers 409.")
DUPLICATE_NAME = OpenApiResponse(response=ErrorDetail, description="The org already has a rule with this name.")


if TYPE_CHECKING:  # the scopes below are mixed into DRF generic views of these models
    _RuleView = generics.GenericAPIView[AlertRule]
    _IncidentView = generics.GenericAPIView[AlertIncident]
else:
    _RuleView = _IncidentView = object


class RuleScope(OrgScopeMixin, _RuleView):
    serializer_class = AlertRuleSerializer
    filter_backends: list = []

    def get_queryset(self):
        return self.scope(AlertRule.objects.select_related("org").prefetch_related("group_states")).order_by("id")

    def saved(self, rule: AlertRule, status_code: int) -> Response:
        # A change may have forgotten its group states (as DRF's update does); a private Django attribute,
        # not in django-stubs.
        rule._prefetched_objects_cache = {}  # type: ignore[attr-defined]
        return Response(SavedAlertRuleSerializer(rule, context=self.get_serializer_context()).data,
                        status=status_code)


@extend_schema_view(
    get=extend_schema(summary="Alert rules of the caller's org (staff: all, or ?org=)",
                      parameters=OrgQuery.openapi_parameters(),
                      responses={200: AlertRuleSerializer(many=True), **error_responses([400, 404])}),
    post=extend_schema(summary="Create an alert rule", parameters=OrgQuery.openapi_parameters(),
                       description=SAVED_DESCRIPTION,
                       responses={201: SavedAlertRuleSerializer, **error_responses([400, 413, 415]),
                                  409: DUPLICATE_NAME}),
)
class AlertRuleListView(RuleScope, generics.ListCreateAPIView):
    """A token lists and creates its org's rules; staff name the org to create in with ``?org=``."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        OrgQuery.from_request(request)  # ?org= as the schema states it

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.method == "POST":
            body = self.request.data if isinstance(self.request.data, dict) else {}
            context["org"] = self.write_org(body.get("org_id"))
        return context

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                rule = serializer.save(org=serializer.context["org"])
        except IntegrityError:  # the same name, created meanwhile
            raise DuplicateRuleName() from None
        return self.saved(rule, status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(summary="An alert rule"),
    patch=extend_schema(summary="Change an alert rule (only the fields sent)", description=SAVED_DESCRIPTION,
                        responses={200: SavedAlertRuleSerializer, **error_responses([400, 404, 413, 415]),
                                   409: DUPLICATE_NAME}),
    delete=extend_schema(summary="Delete an alert rule (its incidents are resolved and kept)",
                         responses={204: None, **error_responses([404])}),
)
class AlertRuleDetailView(RuleScope, generics.RetrieveUpdateDestroyAPIView):
    """One rule of the caller's org. A change to what it watches resolves its open incidents."""

    http_method_names = ["get", "patch", "delete", "head", "options"]

    def partial_update(self, request, *args, **kwargs):
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        previous = copy.copy(serializer.instance)
        try:
            with transaction.atomic():
                rule = serializer.save()
                rule_changed(rule, previous, actor=actor_of(request))
        except IntegrityError:  # the same name, taken meanwhile
            raise DuplicateRuleName() from None
        return self.saved(rule, status.HTTP_200_OK)

    def perform_destroy(self, instance):
        delete_rule(instance, actor=actor_of(self.request))


class IncidentQuery(OrgQuery):
    # Literals built from the models' choices at import (one home for the values): mypy cannot evaluate them.
    status: list[Literal[tuple(IncidentStatus.values)]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Repeatable. Default: every unresolved incident.")
    severity: list[Literal[tuple(Severity.values)]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Repeatable.")
    rule: Annotated[int, Bounded(1, MAX_ID, "A rule id.", from_text=True)] | None = None


class IncidentScope(OrgScopeMixin, _IncidentView):
    filter_backends: list = []

    def get_queryset(self):
        return self.scope(AlertIncident.objects.all())


@extend_schema_view(get=extend_schema(
    summary="Incidents, most severe and newest first (default: unresolved)",
    parameters=IncidentQuery.openapi_parameters(),
    responses={200: IncidentSerializer(many=True), **error_responses([400, 404])}))
class IncidentListView(IncidentScope, generics.ListAPIView):
    """The caller's org's incidents, filtered by status, severity and rule."""

    serializer_class = IncidentSerializer

    def filter_queryset(self, queryset):
        query = IncidentQuery.from_request(self.request)
        queryset = queryset.most_urgent_first()
        queryset = queryset.filter(status__in=query.status) if query.status else queryset.unresolved()
        if query.severity:
            queryset = queryset.filter(severity__in=query.severity)
        if query.rule is not None:
            queryset = queryset.filter(rule_id=query.rule)
        return queryset


@extend_schema_view(get=extend_schema(summary="An incident with its timeline"))
class IncidentDetailView(IncidentScope, generics.RetrieveAPIView):
    """One incident of the caller's org, with every move on its timeline."""

    serializer_class = IncidentDetailSerializer


class IncidentActionView(IncidentScope, generics.GenericAPIView):
    """A move in the incident workflow; a move its status does not allow (or a repeat of it) is a 409."""

    serializer_class = IncidentSerializer

    def act(self, move, **arguments) -> Response:
        incident = self.get_object()
        try:
            incident = move(incident.pk, actor=actor_of(self.request), **arguments)
        except IllegalTransition as error:
            raise Conflict(str(error)) from None
        except incidents.InvalidSilence as error:
            raise field_error(error.field, str(error)) from None
        return Response(IncidentSerializer(incident).data)


class AcknowledgeView(IncidentActionView):
    @endpoint(body=IncidentNote, response=IncidentSerializer, errors=[404, 409],
              summary="Acknowledge an open or silenced incident")
    def post(self, request, pk, body):
        return self.act(incidents.acknowledge, note=body.note)


class ResolveView(IncidentActionView):
    @endpoint(body=IncidentNote, response=IncidentSerializer, errors=[404, 409],
              summary="Resolve an incident by hand (the rule waits its duration again)")
    def post(self, request, pk, body):
        return self.act(incidents.resolve, note=body.note)


class SilenceView(IncidentActionView):
    @endpoint(body=IncidentSilence, response=IncidentSerializer, errors=[404, 409],
              summary="Silence an incident until a time (in the future)")
    def post(self, request, pk, body):
        return self.act(incidents.silence, until=body.until, note=body.note)
