"""Notification channels, general silences and maintenance windows over the API (docs/notifications.md, API).

Each is a strict DRF ``ModelSerializer`` (a JSON type other than the schema's is a 400, never coerced) whose
``validate()`` runs the model's ``clean()`` and answers its errors as 400s naming the field. What the model
checks across fields is also stated in the request schema (``allOf`` of ``if``/``then``), so a body the schema
accepts is accepted. Scoping is the alert rules': a token reads and writes its org's objects, staff all (the
platform's, org null, included) and name the org to create in with ``?org=``; another org's object is a 404.

- A channel's ``secret`` is write-only (responses say ``has_secret``), and the URL of a Slack or webhook
  channel is shown reduced to ``scheme://host/…``: the URL of an incoming webhook is itself a credential.
- DELETE of a general silence removes it (it no longer holds anything back; a GET then answers 404). The
  silences of one incident (made by its silence step) are listed read-only: PATCH or DELETE answers 409.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import is_patched_serializer
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers

from alerts.api.serializers import (
    NO_NUL,
    TEXT_MAX,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StringMapField,
    string_map_schema,
)
from alerts.api.views import actor_of
from alerts.models import MAX_LABELS, TAG_KEY_MAX, TAG_VALUE_MAX, AlertRule, Severity, Silence
from alerts.notifications.models import MaintenanceWindow, NotificationChannel
from analytics.platform.contracts import NAME, PATTERN_MESSAGES, PRINTABLE, ErrorDetail, OrgQuery, error_responses
from analytics.platform.conventions import OrgScopeMixin
from analytics.platform.errors import Conflict
from analytics.platform.tenancy import Organization
from analytics.platform.windows import WindowError, parse_time

MAX_ID = 2**63 - 1
MAX_MATCHERS = MAX_LABELS  # 20
MAX_RECIPIENTS = 50
MAX_RULES = 100
MAX_INT = 2**31 - 1  # PositiveIntegerField (PostgreSQL integer)
WEEK_MINUTES = 7 * 24 * 60
URL_MAX = 2048
EMAIL_MAX = 254
# What the schema states, and a subset of what Django's URLValidator and EmailValidator accept, so that a
# value the schema allows is never refused by the model's clean().
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL}){{0,4}}\.[a-z]{{2,12}}"
# Internal receivers are often an IPv4 address or localhost: both as Django's URLValidator reads them.
_OCTET = r"(?:0|25[0-5]|2[0-4][0-9]|1[0-9]?[0-9]?|[1-9][0-9]?)"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
URL_PATTERN = (rf"^https?://(?:{_HOST}|localhost|{_IPV4})(?::[1-9][0-9]{{0,3}})?"
               r"(?:/[A-Za-z0-9._~%/+=&?-]*)?$")
EMAIL_PATTERN = rf"^[A-Za-z0-9_%+-]{{1,20}}(?:\.[A-Za-z0-9_%+-]{{1,20}}){{0,2}}@{_HOST}$"
TIME_PATTERN = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?$"
_URL, _EMAIL, _TIME = re.compile(URL_PATTERN), re.compile(EMAIL_PATTERN), re.compile(TIME_PATTERN)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NO_NUL, _PRINTABLE, _NAME = re.compile(NO_NUL), re.compile(PRINTABLE), re.compile(NAME)
REDACTED = "…"


@cache
def time_zones() -> list[str]:
    return sorted(available_timezones())


def redact_url(url) -> str:
    """``https://hooks.slack.com/services/T0/B0/xyz`` → ``https://hooks.slack.com/…``."""
    if not isinstance(url, str):
        return REDACTED
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if not parts.scheme or not parts.hostname:
        return REDACTED
    return f"{parts.scheme}://{parts.hostname}/{REDACTED}"


def django_errors(error: DjangoValidationError) -> serializers.ValidationError:
    if hasattr(error, "error_dict"):
        return serializers.ValidationError({field: list(messages) for field, messages in error.message_dict.items()})
    return serializers.ValidationError({"non_field_errors": error.messages})


# --- Fields: each states its schema and checks exactly it ----------------------------------------------


def as_int(value) -> int | None:
    """A JSON integer (``3.0`` is one, as JSON Schema says); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value


def _text_checks(value: str, pattern: re.Pattern, message: str) -> str:
    if _SURROGATE.search(value):
        raise serializers.ValidationError("Surrogate characters are not allowed.")
    if not pattern.fullmatch(value):
        raise serializers.ValidationError(message)
    return value


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 100, "pattern": NAME})
class NameField(StrictCharField):
    def to_internal_value(self, data):
        return _text_checks(super().to_internal_value(data), _NAME, PATTERN_MESSAGES[NAME])


@extend_schema_field({"type": "string", "maxLength": TEXT_MAX, "pattern": NO_NUL})
class NoteField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(allow_blank=True, max_length=TEXT_MAX, **kwargs)

    def to_internal_value(self, data):
        return _text_checks(super().to_internal_value(data), _NO_NUL, "Must not contain NUL characters.")


@extend_schema_field({"type": "string", "maxLength": 200, "pattern": PRINTABLE})
class SecretField(StrictCharField):
    def __init__(self, **kwargs):
        super().__init__(allow_blank=True, max_length=200, write_only=True, **kwargs)

    def to_internal_value(self, data):
        return _text_checks(super().to_internal_value(data), _PRINTABLE, PATTERN_MESSAGES[PRINTABLE])


@extend_schema_field(string_map_schema(MAX_MATCHERS))
class MatchersField(StringMapField):
    """An object of label → value: up to 20, keys 1-64 characters, values up to 256, printable."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be an object of label → value.")
        if len(data) > MAX_MATCHERS:
            raise serializers.ValidationError(f"At most {MAX_MATCHERS} matchers.")
        for key, value in data.items():
            if not isinstance(value, str):
                raise serializers.ValidationError(f"{key!r}: the value must be a string.")
            if not 1 <= len(key) <= TAG_KEY_MAX:
                raise serializers.ValidationError(f"{key!r}: a label is 1 to {TAG_KEY_MAX} characters.")
            if len(value) > TAG_VALUE_MAX:
                raise serializers.ValidationError(f"{key!r}: a value is at most {TAG_VALUE_MAX} characters.")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "format": "date-time"})
class StrictDateTimeField(serializers.Field):
    """An ISO-8601 date-time string (naive = UTC); answered in UTC with ``Z``."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be an ISO-8601 date-time string.")
        try:
            return parse_time(self.field_name or "time", data)
        except WindowError:
            raise serializers.ValidationError("Must be an ISO-8601 date-time.") from None
        except OverflowError:
            raise serializers.ValidationError("Is outside the range of dates.") from None

    def to_representation(self, value: datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@extend_schema_field({"type": "string", "pattern": TIME_PATTERN, "description": "HH:MM or HH:MM:SS"})
class LocalTimeField(serializers.Field):
    def to_internal_value(self, data):
        if not isinstance(data, str) or not _TIME.fullmatch(data):
            raise serializers.ValidationError("Must be a time of day, HH:MM or HH:MM:SS.")
        return time.fromisoformat(data)

    def to_representation(self, value: time):
        return value.strftime("%H:%M:%S")


@extend_schema_field({"allOf": [{"type": "string", "enum": time_zones()}]})
class TimeZoneField(StrictCharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value not in time_zones():
            raise serializers.ValidationError("An IANA time zone, e.g. Europe/Berlin.")
        return value


# Enums inline in allOf (not components): the rules' and incidents' severity enums keep their names.
@extend_schema_field({"allOf": [{"type": "string", "enum": Severity.values}]})
class SeverityField(serializers.Field):
    def to_internal_value(self, data):
        if not isinstance(data, str) or data not in Severity.values:
            raise serializers.ValidationError(f"One of {', '.join(Severity.values)}.")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "array", "uniqueItems": True, "maxItems": len(Severity.values),
                      "items": {"allOf": [{"type": "string", "enum": Severity.values}]}})
class SeverityListField(serializers.Field):
    def to_internal_value(self, data):
        if not isinstance(data, list) or not all(isinstance(item, str) and item in Severity.values for item in data):
            raise serializers.ValidationError(f"A list of severities: {', '.join(Severity.values)}.")
        if len(set(data)) != len(data):
            raise serializers.ValidationError("Each severity once.")
        return data

    def to_representation(self, value):
        return list(value or [])


@extend_schema_field({"type": "array", "uniqueItems": True, "maxItems": 7,
                      "items": {"type": "integer", "minimum": 0, "maximum": 6}})
class WeekdaysField(serializers.Field):
    def to_internal_value(self, data):
        days = [as_int(day) for day in data] if isinstance(data, list) else None
        if days is None or not all(day is not None and 0 <= day <= 6 for day in days):
            raise serializers.ValidationError("A list of days, 0 (Monday) to 6 (Sunday).")
        data = days
        if len(set(data)) != len(data):
            raise serializers.ValidationError("Each day once.")
        return sorted(data)

    def to_representation(self, value):
        return list(value or [])


class OrgRuleField(serializers.Field):
    """A rule id of the object's org (another org's rule, or none: a 400 naming the field)."""

    def to_internal_value(self, data):
        rule = as_int(data)
        if rule is None or not 1 <= rule <= MAX_ID:
            raise serializers.ValidationError("A rule id.")
        return rule

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class NullableRuleField(OrgRuleField):
    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)


@extend_schema_field({"type": "array", "uniqueItems": True, "maxItems": MAX_RULES,
                      "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID}})
class RuleListField(serializers.Field):
    def to_internal_value(self, data):
        ids = [as_int(item) for item in data] if isinstance(data, list) else None
        if ids is None or not all(item is not None and 1 <= item <= MAX_ID for item in ids):
            raise serializers.ValidationError("A list of rule ids.")
        data = ids
        if len(data) > MAX_RULES or len(set(data)) != len(data):
            raise serializers.ValidationError(f"Up to {MAX_RULES} distinct rule ids.")
        return data

    def to_representation(self, value):
        return sorted(rule.pk for rule in value.all())


def check_rules(field: str, ids, org: Organization | None) -> list[AlertRule]:
    """The rules of ``org`` with these ids, or a 400 naming ``field``."""
    found = list(AlertRule.objects.filter(org=org, pk__in=ids))
    missing = sorted(set(ids) - {rule.pk for rule in found})
    if missing:
        raise serializers.ValidationError({field: [f"No rule of this org with id {', '.join(map(str, missing))}."]})
    return found


class ScopedModelSerializer(serializers.ModelSerializer):
    """Runs the model's clean() over the stored values with the changes applied."""

    org: serializers.SlugRelatedField[Organization] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True,
        help_text="The owning org; null for a platform object (staff only).")

    def target_org(self) -> Organization | None:
        return self.context["org"] if self.instance is None else self.instance.org

    def full_clean(self, attrs, skip=()):
        model = self.Meta.model
        instance = model() if self.instance is None else model.objects.get(pk=self.instance.pk)
        for key, value in attrs.items():
            if key not in skip:
                setattr(instance, key, value)
        try:
            instance.clean()
        except DjangoValidationError as error:
            raise django_errors(error) from None


# --- Channels ---------------------------------------------------------------------------------------------


_CONFIG_KEY = {"type": "string", "minLength": 1, "maxLength": TAG_KEY_MAX, "pattern": PRINTABLE}
_CONFIG_VALUE = {"type": "string", "maxLength": URL_MAX, "pattern": PRINTABLE}
_RECIPIENTS = {"type": "array", "minItems": 1, "maxItems": MAX_RECIPIENTS,
               "items": {"type": "string", "maxLength": EMAIL_MAX, "pattern": EMAIL_PATTERN}}
_WEB_URL = {"type": "string", "maxLength": URL_MAX, "pattern": URL_PATTERN}


@extend_schema_field({
    "type": "object", "maxProperties": MAX_MATCHERS, "propertyNames": _CONFIG_KEY,
    "properties": {"to": _RECIPIENTS}, "additionalProperties": _CONFIG_VALUE,
    "description": (
        'email: {"to": ["address", ...]}; slack and webhook: {"url": "https://..."}; other keys are strings. '
        'In responses a URL is shown reduced to scheme://host/… (e.g. "https://hooks.slack.com/…"): the URL '
        "of a webhook is itself a secret.")})
class ChannelConfigField(serializers.Field):
    """An object of printable strings (``to``: a list of addresses); what each kind needs is checked by the
    serializer, which knows the kind."""

    def to_internal_value(self, data):
        if not isinstance(data, dict) or len(data) > MAX_MATCHERS:
            raise serializers.ValidationError(f"Must be an object of up to {MAX_MATCHERS} keys.")
        for key, value in data.items():
            _text(key, TAG_KEY_MAX, 1)
            if key == "to":
                _recipients(value)
            else:
                _text(value, URL_MAX)
        return data

    def to_representation(self, value):
        if not isinstance(value, dict):
            return {}
        shown = dict(value)
        if "url" in shown:
            shown["url"] = redact_url(shown["url"])
        return shown


def _text(value, limit: int, minimum: int = 0) -> None:
    if not isinstance(value, str) or not minimum <= len(value) <= limit:
        raise serializers.ValidationError(f"Keys and values are strings of {minimum} to {limit} characters.")
    _text_checks(value, _PRINTABLE, f"{value!r}: {PATTERN_MESSAGES[PRINTABLE]}")


def _recipients(value) -> None:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RECIPIENTS or not all(
            isinstance(address, str) and len(address) <= EMAIL_MAX and _EMAIL.fullmatch(address)
            for address in value):
        raise serializers.ValidationError(f'"to": a list of 1 to {MAX_RECIPIENTS} email addresses (user@example.com).')


def _web_url(value) -> None:
    if not isinstance(value, str) or len(value) > URL_MAX or not _URL.fullmatch(value):
        raise serializers.ValidationError('"url": an http or https URL, e.g. "https://hooks.slack.com/...".')


class ChannelSerializer(ScopedModelSerializer):
    """A notification channel. ``secret`` is write-only (see ``has_secret``); a Slack or webhook URL in
    ``config`` is answered reduced to scheme://host/… (e.g. "https://hooks.slack.com/…"): it is a secret too.
    On PATCH, ``kind`` and ``config`` are sent together."""

    name = NameField(max_length=100, help_text="Printable, without leading or trailing spaces.")
    kind = StrictChoiceField(NotificationChannel.Kind.choices)
    config = ChannelConfigField(help_text="See the schema's description of the field.")
    secret = SecretField(required=False, help_text=(
        "Webhook: the HMAC-SHA256 key of X-ToolWeaver-Signature. Write-only: never in a response (see has_secret)."))
    has_secret = serializers.SerializerMethodField(help_text="Whether a secret is set (it is never shown).")
    rules = RuleListField(required=False, help_text="Ids of the org's rules that notify this channel.")
    default_for = SeverityListField(required=False, help_text=(
        "Severities this channel receives from rules that name no channel."))
    repeat_interval_seconds = StrictIntegerField(min_value=0, max_value=MAX_INT, required=False, help_text=(
        "Notify again while an incident is open and not acknowledged; 0: never. Default 4 hours."))
    timeout_seconds = StrictFloatField(required=False, help_text="More than 0, at most 60; default 10.")
    enabled = StrictBooleanField(required=False)
    created_at = StrictDateTimeField(read_only=True)

    class Meta:
        model = NotificationChannel
        fields = ["id", "org", "name", "kind", "config", "secret", "has_secret", "rules", "default_for",
                  "repeat_interval_seconds", "timeout_seconds", "enabled", "created_at"]

    def get_has_secret(self, channel: NotificationChannel) -> bool:
        return bool(channel.secret)

    def validate_timeout_seconds(self, value):
        if not 0 < value <= 60:
            raise serializers.ValidationError("More than 0 and at most 60 seconds.")
        return value

    def validate(self, attrs):
        if self.partial and ("kind" in attrs) != ("config" in attrs):
            missing = "config" if "kind" in attrs else "kind"
            raise serializers.ValidationError({missing: ["A change of kind or config sends both."]})
        kind = attrs.get("kind", self.instance.kind if self.instance is not None else None)
        if "config" in attrs:
            try:
                if kind == NotificationChannel.Kind.EMAIL:
                    _recipients(attrs["config"].get("to"))
                elif kind is not None:
                    _web_url(attrs["config"].get("url"))
            except serializers.ValidationError as error:
                raise serializers.ValidationError({"config": error.detail}) from None
        if "rules" in attrs:
            attrs["rules"] = check_rules("rules", attrs["rules"], self.target_org())
        self.full_clean(attrs, skip=("rules",))
        return attrs


def plain_text_schemas(schema: dict) -> dict:
    """drf-spectacular writes a blank-allowed string with a pattern as ``oneOf [pattern, maxLength 0]``, which
    ``""`` matches twice, hence not at all: the fields' own schemas instead."""
    properties = schema.get("properties", {})
    if "note" in properties:
        properties["note"] = {"type": "string", "maxLength": TEXT_MAX, "pattern": NO_NUL,
                              "description": properties["note"].get("description", "")}
    if "secret" in properties:
        properties["secret"] = {"type": "string", "maxLength": 200, "pattern": PRINTABLE, "writeOnly": True,
                                "description": properties["secret"].get("description", "")}
    return schema


class ChannelSchema(OpenApiSerializerExtension):
    """The channel body's schema: the config each kind needs; on PATCH, kind and config travel together."""

    target_class = ChannelSerializer

    def map_serializer(self, auto_schema, direction):
        schema = plain_text_schemas(auto_schema._map_serializer(self.target, direction, bypass_extensions=True))
        schema.get("properties", {}).get("timeout_seconds", {}).update(exclusiveMinimum=0, maximum=60)
        if direction != "request":
            return schema
        patched = is_patched_serializer(self.target, direction)
        email = {"type": "object", "required": ["to"]}
        web = {"type": "object", "required": ["url"], "properties": {"url": _WEB_URL}}
        rules: list[dict] = [
            {"if": {"required": ["kind"], "properties": {"kind": {"const": "email"}}},
             "then": {"properties": {"config": email}}},
            {"if": {"required": ["kind"], "properties": {"kind": {"enum": ["slack", "webhook"]}}},
             "then": {"properties": {"config": web}}},
        ]
        if patched:
            rules += [{"if": {"required": ["kind"]}, "then": {"required": ["config"]}},
                      {"if": {"required": ["config"]}, "then": {"required": ["kind"]}}]
        schema["allOf"] = rules
        return schema


# --- Silences ---------------------------------------------------------------------------------------------


class SilenceSerializer(ScopedModelSerializer):
    """A general silence (``incident`` null): by rule, severity and label matchers, from ``starts_at`` to
    ``until``. It needs a rule, a severity or a label. An incident's own silence is shown read-only."""

    rule = NullableRuleField(required=False, help_text="Only this rule's incidents (a rule of the org).")
    severity = SeverityField(required=False, help_text="Only incidents of this severity.")
    matchers = MatchersField(required=False, help_text=(
        "Labels that must all be equal, among the incident's group and its rule's labels."))
    starts_at = StrictDateTimeField(required=False, help_text="Default: now.")
    until = StrictDateTimeField(help_text="The end; after starts_at.")
    note = NoteField(required=False, help_text="Why (shown on the timelines of the incidents it holds back).")
    created_by = serializers.CharField(read_only=True)
    ended_at = StrictDateTimeField(read_only=True, allow_null=True)
    incident = serializers.IntegerField(source="incident_id", read_only=True, allow_null=True, help_text=(
        "Set for the silence of one incident (read-only here); null for a general silence."))

    class Meta:
        model = Silence
        fields = ["id", "org", "rule", "severity", "matchers", "starts_at", "until", "note", "created_by",
                  "ended_at", "incident"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["rule"] = instance.rule_id
        if instance.org_id is None and instance.incident_id is not None and instance.incident.org is not None:
            data["org"] = instance.incident.org.slug
        return data

    def validate(self, attrs):
        if attrs.get("rule") is not None:
            attrs["rule"] = check_rules("rule", [attrs["rule"]], self.target_org())[0]
        if self.instance is None:
            attrs.setdefault("starts_at", timezone.now())
        self.full_clean(attrs)
        return attrs


class SilenceSchema(OpenApiSerializerExtension):
    target_class = SilenceSerializer

    def map_serializer(self, auto_schema, direction):
        schema = plain_text_schemas(auto_schema._map_serializer(self.target, direction, bypass_extensions=True))
        properties = schema.get("properties", {})
        if direction != "request":
            properties["severity"] = {"allOf": [{"type": "string", "enum": ["", *Severity.values]}],
                                      "description": "Empty: any severity."}
            properties["rule"] = {"type": ["integer", "null"]}
            return schema
        if not is_patched_serializer(self.target, direction):
            # A silence of everything is refused: a rule, a severity or a label.
            schema["anyOf"] = [{"required": ["rule"], "properties": {"rule": {"type": "integer"}}},
                               {"required": ["severity"]},
                               {"required": ["matchers"], "properties": {"matchers": {"minProperties": 1}}}]
        return schema


# --- Maintenance windows ------------------------------------------------------------------------------


class MaintenanceWindowSerializer(ScopedModelSerializer):
    """One-off (``starts_at`` to ``ends_at``, ``start_time`` null) or recurring (``start_time`` on
    ``weekdays`` in ``timezone`` for ``duration_minutes``); it matches by rule and label matchers."""

    name = NameField(max_length=100, help_text="Printable, without leading or trailing spaces.")
    rule = NullableRuleField(required=False, help_text="Only this rule's incidents (a rule of the org).")
    matchers = MatchersField(required=False, help_text='Labels that must all match, e.g. {"service": "db"}.')
    starts_at = StrictDateTimeField(required=False, allow_null=True, help_text="One-off: the start.")
    ends_at = StrictDateTimeField(required=False, allow_null=True, help_text="One-off: the end (after the start).")
    weekdays = WeekdaysField(required=False, help_text="Recurring: distinct days, 0 = Monday … 6 = Sunday.")
    start_time = LocalTimeField(required=False, allow_null=True, help_text=(
        "Recurring: the local start time, HH:MM[:SS]. Null: a one-off window."))
    duration_minutes = StrictIntegerField(min_value=1, max_value=WEEK_MINUTES, required=False,
                                          help_text="Recurring: how long each time (default 60).")
    timezone = TimeZoneField(required=False, help_text="Recurring: an IANA time zone (default UTC).")
    note = NoteField(required=False)
    created_by = serializers.CharField(read_only=True)

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "org", "name", "rule", "matchers", "starts_at", "ends_at", "weekdays", "start_time",
                  "duration_minutes", "timezone", "note", "created_by"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["rule"] = instance.rule_id
        return data

    def validate(self, attrs):
        if self.partial and "start_time" in attrs:
            # A change between one-off and recurring states the new form whole (as the schema says).
            needed = ["weekdays"] if attrs["start_time"] is not None else ["starts_at", "ends_at"]
            missing = [field for field in needed if field not in attrs]
            if missing:
                raise serializers.ValidationError(
                    {field: ["Required with start_time in a change."] for field in missing})
        if attrs.get("rule") is not None:
            attrs["rule"] = check_rules("rule", [attrs["rule"]], self.target_org())[0]
        self.full_clean(attrs)
        return attrs


class MaintenanceWindowSchema(OpenApiSerializerExtension):
    target_class = MaintenanceWindowSerializer

    def map_serializer(self, auto_schema, direction):
        schema = plain_text_schemas(auto_schema._map_serializer(self.target, direction, bypass_extensions=True))
        properties = schema.get("properties", {})
        if direction != "request":
            properties["rule"] = {"type": ["integer", "null"]}
            return schema
        recurring = {"required": ["start_time"], "properties": {"start_time": {"type": "string"}}}
        needs_days = {"required": ["weekdays"], "properties": {"weekdays": {"minItems": 1}}}
        one_off = {"required": ["starts_at", "ends_at"],
                   "properties": {"starts_at": {"type": "string"}, "ends_at": {"type": "string"}}}
        if is_patched_serializer(self.target, direction):
            # Over the stored window only what the body itself breaks can be stated.
            schema["allOf"] = [
                {"if": {"required": ["start_time"], "properties": {"start_time": {"type": "null"}}},
                 "then": one_off},
                {"if": recurring, "then": needs_days},
            ]
        else:
            schema["allOf"] = [{"if": recurring, "then": needs_days, "else": one_off}]
        return schema


# --- Views ------------------------------------------------------------------------------------------------


if TYPE_CHECKING:
    _View = generics.GenericAPIView
else:
    _View = object


class Scoped(OrgScopeMixin, _View):
    """A token reads and writes its org's objects; staff read all (or ``?org=``) and create with ``?org=``."""

    filter_backends: list = []
    model: type

    def get_queryset(self):
        return self.scope(self.model.objects.select_related("org")).order_by("id")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.method == "POST":
            context["org"] = self.write_org()
        return context


class ListCreate(Scoped, generics.ListCreateAPIView):
    """The org's objects, oldest first (paginated); POST creates one in the caller's org."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        OrgQuery.from_request(request)  # ?org= as the schema states it

    def perform_create(self, serializer):
        extra = {"org": serializer.context["org"]}
        if "created_by" in serializer.fields:
            extra["created_by"] = actor_of(self.request)
        serializer.save(**extra)


class Detail(Scoped, generics.RetrieveUpdateDestroyAPIView):
    """One object of the caller's org (another org's: 404)."""

    http_method_names = ["get", "patch", "delete", "head", "options"]


def _list_and_create(noun: str, serializer) -> dict:
    return {
        "get": extend_schema(summary=f"{noun.capitalize()} of the caller's org (staff: all, or ?org=)",
                             parameters=OrgQuery.openapi_parameters(),
                             responses={200: serializer(many=True), **error_responses([400, 404])}),
        "post": extend_schema(summary=f"Create a {noun.rstrip('s')}", parameters=OrgQuery.openapi_parameters(),
                              responses={201: serializer, **error_responses([400, 413, 415])}),
    }


def _detail(noun: str, serializer, delete: str, conflict: str | None = None) -> dict:
    extra = {409: OpenApiResponse(response=ErrorDetail, description=conflict)} if conflict else {}
    return {
        "get": extend_schema(summary=f"A {noun}", responses={200: serializer, **error_responses([404])}),
        "patch": extend_schema(summary=f"Change a {noun} (only the fields sent)",
                               responses={200: serializer, **error_responses([400, 404, 413, 415]), **extra}),
        "delete": extend_schema(summary=delete, responses={204: None, **error_responses([404]), **extra}),
    }


@extend_schema_view(**_list_and_create("notification channels", ChannelSerializer))
class ChannelListView(ListCreate):
    """Notification channels; secrets are never answered and webhook URLs are shown reduced to their host."""

    serializer_class = ChannelSerializer
    model = NotificationChannel

    def get_queryset(self):
        return super().get_queryset().prefetch_related("rules")


@extend_schema_view(**_detail("notification channel", ChannelSerializer, "Delete a notification channel"))
class ChannelDetailView(Detail):
    """One notification channel; secrets are never answered and webhook URLs are shown reduced to their host."""

    serializer_class = ChannelSerializer
    model = NotificationChannel

    def get_queryset(self):
        return super().get_queryset().prefetch_related("rules")

    def perform_update(self, serializer):
        serializer.save()
        serializer.instance._prefetched_objects_cache = {}


def silences_of(view: Scoped):
    """An incident's own silence has no org of its own: it is its incident's org's."""
    scope = view.read_org()
    rows = Silence.objects.select_related("org", "incident__org").order_by("id")
    if scope.is_all:
        return rows
    return rows.filter(Q(org=scope.org) | Q(org__isnull=True, incident__org=scope.org))


INCIDENT_SILENCE = "The silence of one incident (made by its silence step) is read-only here."


@extend_schema_view(**_list_and_create("silences", SilenceSerializer))
class SilenceListView(ListCreate):
    """General silences are created here; incidents' own silences are listed too (``incident`` set)."""

    serializer_class = SilenceSerializer
    model = Silence

    def get_queryset(self):
        return silences_of(self)


@extend_schema_view(**_detail("silence", SilenceSerializer,
                              "Delete a general silence (it stops holding back at once; then 404)",
                              conflict=INCIDENT_SILENCE))
class SilenceDetailView(Detail):
    """One silence. DELETE removes a general silence (a GET then answers 404); an incident's own silence is
    read-only here (409)."""

    serializer_class = SilenceSerializer
    model = Silence

    def get_queryset(self):
        return silences_of(self)

    def get_object(self):
        silence = super().get_object()
        if self.request.method in ("PATCH", "DELETE") and silence.incident_id is not None:
            raise Conflict(INCIDENT_SILENCE)
        return silence


@extend_schema_view(**_list_and_create("maintenance windows", MaintenanceWindowSerializer))
class MaintenanceWindowListView(ListCreate):
    """Maintenance windows: notifications of the incidents they match are held back while they are on."""

    serializer_class = MaintenanceWindowSerializer
    model = MaintenanceWindow


@extend_schema_view(**_detail("maintenance window", MaintenanceWindowSerializer, "Delete a maintenance window"))
class MaintenanceWindowDetailView(Detail):
    """One maintenance window."""

    serializer_class = MaintenanceWindowSerializer
    model = MaintenanceWindow

