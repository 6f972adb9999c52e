"""What a notification says: one message, rendered by each transport in its own way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

MessageKind = Literal["firing", "resolved", "repeat", "test"]


@dataclass(frozen=True)
class NotificationMessage:
    """One incident's news (or a channel's test), independent of the channel it goes to.

    ``kind``: firing (the incident opened), repeat (still firing, not acknowledged), resolved, or test.
    ``incident_url`` links to the incident's admin page (absolute when SITE_URL is configured).
    """

    kind: MessageKind
    rule_name: str
    severity: str
    status: str
    condition: str
    threshold: float
    value: float | None
    group: dict[str, str] = field(default_factory=dict)
    incident_id: int | None = None
    incident_url: str = ""
    org: str = ""
    triggered_at: datetime | None = None
    resolved_at: datetime | None = None
    notification_id: int | None = None
    # Other incidents of the same rule that fired within the channel's group wait: told in this one message.
    also: tuple[NotificationMessage, ...] = ()

    @property
    def labels(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in sorted(self.group.items()))

    @property
    def title(self) -> str:
        """``[FIRING] critical: API latency p95 high (host=h1)`` — the subject line of every channel;
        ``(3 groups)`` when incidents that fired together are told at once."""
        if self.also:
            where = f" ({1 + len(self.also)} groups)"
        else:
            where = f" ({self.labels})" if self.labels else ""
        return f"[{self.kind.upper()}] {self.severity}: {self.rule_name}{where}"

    @property
    def summary(self) -> str:
        """One line with the figures: value against threshold, the condition, when (per group, grouped)."""
        if self.also:
            values = "; ".join(f"{message.labels or 'all'}: {_value(message.value)}" for message in (self, *self.also))
            return f"{self.condition}, threshold {self.threshold:g}: {values}"
        value = _value(self.value)
        when = self.resolved_at if self.kind == "resolved" and self.resolved_at else self.triggered_at
        moment = f" at {when.isoformat()}" if when else ""
        return f"{self.condition}: value {value}, threshold {self.threshold:g}{moment}"


def _value(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


class DeliveryError(Exception):
    """A send failed. ``permanent``: retrying cannot help (a 4xx other than 429, a bad address).

    ``retry_after``: seconds the receiver asked us to wait (an HTTP ``Retry-After``), when it said so.
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
