"""Alert rule previews (docs/alerting.md, Preview): what a proposed or a saved rule would have done over the last
1-30 days. Thin over ``alerts.services.preview.preview_rule``.

- ``POST alerts/rules/preview``: a rule's fields as ``POST alerts/rules`` takes them (``name`` optional), ``days``,
  and optionally ``compare_to``, the id of the saved rule the proposal would change.
- ``GET alerts/rules/{id}/preview?days=7``: a saved rule.

A preview writes nothing, so a read-only token may make one (a POST included). Scoping is the rules': a token's
proposal reads its org's data and compares with its org's rules; staff propose for ``?org=`` (or, without it, a
platform rule reading every org). Another org's rule: 404 in the path, 400 naming ``compare_to`` in the body.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictBool, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError
from rest_framework import generics

from alerts.api.serializers import NO_NUL, TEXT_MAX, built_in_source_rules
from alerts.api.views import MAX_ID, RuleScope
from alerts.models import (
    MAX_DURATION_SECONDS,
    MAX_GROUP_BY,
    MAX_LABELS,
    MAX_WINDOW_SECONDS,
    MIN_WINDOW_SECONDS,
    SERVICE_HEALTH,
    TAG_KEY_MAX,
    TAG_VALUE_MAX,
    AlertRule,
    NoData,
    Operator,
    Severity,
    rule_problems,
)
from alerts.services.preview import (
    DEFAULT_DAYS,
    MAX_DAYS,
    MIN_DAYS,
    PreviewUnavailable,
    RulePreview,
    inline_enum,
    preview_rule,
)
from analytics.platform.auth import TokenPrincipal
from analytics.platform.contracts import (
    PRINTABLE,
    Bounded,
    Name,
    OrgId,
    OrgQuery,
    RequestContract,
    TagKey,
    Tags,
    endpoint,
)
from analytics.platform.errors import field_error
from analytics.platform.permissions import ApiAccess
from analytics.platform.tenancy import Organization
from analytics.services.metrics_query import Aggregate

_NAME_MAX = AlertRule._meta.get_field("name").max_length or 200
_METRIC_NAME_MAX = AlertRule._meta.get_field("metric_name").max_length or 200
_DAYS = f"The period previewed: the last 1 to {MAX_DAYS} days (default {DEFAULT_DAYS})."

Seconds = Annotated[int, Bounded(0, MAX_DURATION_SECONDS)]
Labels = Annotated[dict[TagKey, Annotated[str, Field(max_length=TAG_VALUE_MAX, pattern=PRINTABLE)]],
                   Field(max_length=MAX_LABELS), WithJsonSchema({
                       "type": "object", "maxProperties": MAX_LABELS,
                       "propertyNames": {"minLength": 1, "maxLength": TAG_KEY_MAX, "pattern": PRINTABLE},
                       "additionalProperties": {"type": "string", "maxLength": TAG_VALUE_MAX, "pattern": PRINTABLE},
                       "description": f"Up to {MAX_LABELS} free labels (they do not change what the rule opens).",
                   })]
GroupBy = Annotated[list[TagKey], Field(max_length=MAX_GROUP_BY, json_schema_extra={"uniqueItems": True}, description=(
    f"Up to {MAX_GROUP_BY} distinct tag keys: one incident per group."))]


class RulePreviewBody(RequestContract):
    """A proposed rule, as ``POST alerts/rules`` takes it (``name`` optional: nothing is saved), and the period."""

    # The built-in sources' rules on tags and group_by, as the rule body's schema states them; not service.health.
    model_config = ConfigDict(json_schema_extra={"allOf": [
        *(rule for rule in built_in_source_rules(patched=False)
          if rule["if"]["properties"]["metric_name"]["const"] != SERVICE_HEALTH),
        {"not": {"required": ["metric_name"], "properties": {"metric_name": {"const": SERVICE_HEALTH}}}},
    ]})

    name: Annotated[str, Name(_NAME_MAX)] | None = Field(None, description="Optional; nothing is saved.")
    description: Annotated[str, Field(max_length=TEXT_MAX, pattern=NO_NUL)] = ""
    metric_name: Annotated[str, Name(_METRIC_NAME_MAX, description="A metric, or a built-in source (not "
                                                                   "service.health, which has no history).")]
    aggregation: Aggregate = "avg"
    window_seconds: Annotated[int, Bounded(MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS)] = 300
    tags: Tags = Field(default_factory=dict)
    group_by: GroupBy = Field(default_factory=list)
    # Literals built from the models' choices at import (one home for the values): mypy cannot evaluate them.
    # Inline enums (allOf, not components), so that the rule body's OperatorEnum and SeverityEnum keep their names.
    condition_operator: Annotated[Literal[tuple(Operator.values)],  # type: ignore[valid-type]
                                  WithJsonSchema(inline_enum(Operator.values))]
    threshold: Annotated[float, Field(strict=True, allow_inf_nan=False, description="A finite number.")]
    duration_seconds: Seconds = 0
    keep_firing_seconds: Seconds = 0
    reopen_after_seconds: Seconds = 0
    severity: Annotated[Literal[tuple(Severity.values)],  # type: ignore[valid-type]
                        WithJsonSchema(inline_enum(Severity.values))] = "warning"
    no_data: Literal[tuple(NoData.values)] = "ok"  # type: ignore[valid-type]
    labels: Labels = Field(default_factory=dict)
    enabled: StrictBool = Field(True, description="Ignored: a disabled rule is previewed as if enabled.")
    org_id: OrgId
    days: Annotated[int, Bounded(MIN_DAYS, MAX_DAYS, _DAYS)] = DEFAULT_DAYS
    compare_to: Annotated[int, Bounded(1, MAX_ID, "The id of the saved rule this proposal changes: the answer "
                                                  "adds its incident count and the comparison.")] | None = None

    @model_validator(mode="after")
    def _a_rule(self):
        problems = rule_problems(metric_name=self.metric_name, tags=self.tags, group_by=self.group_by,
                                 labels=self.labels, threshold=self.threshold)
        problems.pop("metric_name", None)  # its pattern is the API's rule, as for POST alerts/rules
        if problems:  # one error of a model's validator: the first field's (field types caught the rest)
            field, messages = next(iter(problems.items()))
            raise PydanticCustomError("rule", "{message}", {"field": field, "message": " ".join(messages)})
        return self

    def rule(self, org: Organization | None) -> AlertRule:
        """The proposed rule, unsaved."""
        fields = self.model_dump(exclude={"org_id", "days", "compare_to", "name"})
        return AlertRule(org=org, name=self.name or "preview", **fields)


class RulePreviewQuery(OrgQuery):
    days: Annotated[int, Bounded(MIN_DAYS, MAX_DAYS, _DAYS, from_text=True)] = DEFAULT_DAYS


class PreviewAccess(ApiAccess):
    """A preview writes nothing: any valid token may make one, with a POST too."""

    def has_permission(self, request, view):
        return isinstance(request.user, TokenPrincipal) or super().has_permission(request, view)


def _answer(rule: AlertRule, *, days: int, compare_to: AlertRule | None = None) -> RulePreview:
    try:
        return preview_rule(rule, days=days, compare_to=compare_to)
    except PreviewUnavailable as error:
        raise field_error(error.field, error.message) from None


DESCRIPTION = ("The rule's value per group at each evaluation (every window; for a value asked per moment, a "
               "multiple of it keeping a preview to 1,500 evaluations), the threshold, and the incidents the rule "
               "would have opened with its duration, keep-firing, reopen and no-data settings. Nothing is written; "
               "read-only tokens may preview. See docs/alerting.md, Preview, for where a preview may differ from "
               "the evaluator.")


class RulePreviewView(RuleScope, generics.GenericAPIView):
    """POST alerts/rules/preview: a proposed rule."""

    permission_classes = [PreviewAccess]

    @endpoint(query=OrgQuery, body=RulePreviewBody, response=RulePreview, summary="Preview a proposed alert rule",
              description=DESCRIPTION + " With `compare_to` (a saved rule of the org), the answer also counts that "
                                        "rule's incidents over the same days.")
    def post(self, request, query, body):
        org = self._proposal_org(body.org_id)
        compare_to = None
        if body.compare_to is not None:
            compare_to = self.get_queryset().filter(pk=body.compare_to).first()
            if compare_to is None:
                raise field_error("compare_to", f"No rule of this org with id {body.compare_to}.")
        return _answer(body.rule(org), days=body.days, compare_to=compare_to)

    def _proposal_org(self, org_id: str | None) -> Organization | None:
        """The token's org; for staff ``?org=``, or None (a platform rule, reading every org)."""
        org = self.read_org().org
        if org_id not in (None, "") and (org is None or org_id != org.slug):
            message = f"Must be this token's organisation {org.slug!r}." if org is not None else (
                "Staff name the organisation with ?org=<slug>.")
            raise field_error("org_id", message)
        return org


class SavedRulePreviewView(RuleScope, generics.GenericAPIView):
    """GET alerts/rules/{id}/preview: a saved rule of the caller's org."""

    permission_classes = [PreviewAccess]

    @endpoint(query=RulePreviewQuery, response=RulePreview, errors=[404], summary="Preview a saved alert rule",
              description=DESCRIPTION)
    def get(self, request, pk, query):
        return _answer(self.get_object(), days=query.days)
