"""Activity events in: the typed events of the platform (seed 003) that the period analytics are computed from.

    ActivityEventItem                       (one event of any type; its members' annotations are the contract)
    EVENT_TYPES                             {type: its model}: the documented schema of each type
    record_activity(org, items) -> IngestResult

Each type is a model with its own required fields (a ``session`` needs ``user_id``, a ``bid`` needs
``agent_id``, ``contract_id`` and ``price``); ``type`` tells them apart, and an unknown type is a 400 naming
``type``. Each model says which of its fields is stored in the row's ``value``, ``fee`` and ``success``
columns (``columns()``), so the computation reads one narrow table. Storing an event marks the periods it
falls in as dirty: the next computation pass computes them again, so a late event corrects its periods.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from django.db import transaction
from django.utils import timezone
from pydantic import Field, RootModel, StrictBool

from analytics.models import ActivityDirtyPeriod, ActivityEvent, EventType, Organization
from analytics.models.activity import ENTITY_ID_MAX_LENGTH
from analytics.platform.contracts import (
    EventId,
    EventTime,
    Name,
    OrgId,
    Printable,
    RequestContract,
    TaggedItem,
)
from analytics.services.bulk_insert import insert_rows
from analytics.services.metrics_ingest import INSERT_CHUNK, IngestResult, drop_duplicates
from analytics.services.periods import enclosing_periods

EntityId = Annotated[str, Name(ENTITY_ID_MAX_LENGTH)]
Amount = Annotated[float, Field(strict=True, ge=0, le=1e15, allow_inf_nan=False,
                                description="At least 0, at most 1e15.")]
Score = Annotated[float, Field(strict=True, ge=0, le=100, allow_inf_nan=False, description="0 to 100.")]
# Seconds or milliseconds of one event: bounded so that the sums of a period stay finite (PostgreSQL refuses a
# float overflow where SQLite answers infinity).
Elapsed = Annotated[float, Field(strict=True, ge=0, le=1e12, allow_inf_nan=False,
                                 description="At least 0, at most 1e12.")]


class ActivityEventBase(RequestContract):
    # Which field of the type goes into the row's value / fee / success column (None: none).
    value_field: ClassVar[str | None] = None
    fee_field: ClassVar[str | None] = None
    success_field: ClassVar[str | None] = None
    detail_fields: ClassVar[tuple[str, ...]] = ()

    timestamp: EventTime = Field(default_factory=timezone.now)
    event_id: EventId | None = None
    org_id: OrgId = None

    def columns(self) -> dict[str, Any]:
        def field(name: str | None):
            return getattr(self, name) if name else None

        return {
            "user_id": getattr(self, "user_id", None) or "",
            "agent_id": getattr(self, "agent_id", None) or "",
            "contract_id": getattr(self, "contract_id", None) or "",
            "value": field(self.value_field), "fee": field(self.fee_field), "success": field(self.success_field),
            "detail": {name: getattr(self, name) for name in self.detail_fields if getattr(self, name) not in
                       (None, "")},
        }


# --- Users -----------------------------------------------------------------------------------------


class Signup(ActivityEventBase):
    """A user signed up: a new user of the period."""
    type: Literal["signup"]
    user_id: EntityId


class Session(ActivityEventBase):
    """A user's session; its active seconds add to the user's active time."""
    value_field = "active_seconds"
    type: Literal["session"]
    user_id: EntityId
    active_seconds: Elapsed = 0.0


class PageView(ActivityEventBase):
    detail_fields = ("path",)
    type: Literal["page_view"]
    user_id: EntityId
    path: Annotated[str, Printable(500)] = ""


class Action(ActivityEventBase):
    detail_fields = ("name",)
    type: Literal["action"]
    user_id: EntityId
    name: Annotated[str, Printable(200)] = ""


# --- Contracts -------------------------------------------------------------------------------------


class ContractEventBase(ActivityEventBase):
    contract_id: EntityId
    user_id: EntityId | None = Field(None, description="The client of the contract.")
    agent_id: EntityId | None = Field(None, description="The agent doing the work.")


class ContractCreated(ContractEventBase):
    value_field = "amount"
    type: Literal["contract_created"]
    user_id: EntityId = Field(description="The client of the contract.")
    amount: Amount | None = None


class ContractCompleted(ContractEventBase):
    type: Literal["contract_completed"]


class ContractCancelled(ContractEventBase):
    type: Literal["contract_cancelled"]


class ContractFailed(ContractEventBase):
    type: Literal["contract_failed"]


class Bid(ActivityEventBase):
    """An agent bid on a contract at ``price``."""
    value_field = "price"
    type: Literal["bid"]
    agent_id: EntityId
    contract_id: EntityId
    price: Amount


class ContractWon(ActivityEventBase):
    type: Literal["contract_won"]
    agent_id: EntityId
    contract_id: EntityId


# --- Money -----------------------------------------------------------------------------------------


class CreditsPurchased(ActivityEventBase):
    value_field = "credits"
    type: Literal["credits_purchased"]
    user_id: EntityId
    credits: Amount


class CreditsSpent(ActivityEventBase):
    value_field = "credits"
    type: Literal["credits_spent"]
    user_id: EntityId
    credits: Amount
    agent_id: EntityId | None = None


class Payment(ActivityEventBase):
    """A user paid an agent ``amount`` (the agent's revenue; the user's total spent), of which
    ``platform_fee`` is the platform's."""
    value_field, fee_field = "amount", "platform_fee"
    type: Literal["payment"]
    agent_id: EntityId
    amount: Amount
    platform_fee: Amount = 0.0
    user_id: EntityId | None = None
    contract_id: EntityId | None = None


# --- Agents ----------------------------------------------------------------------------------------


class AgentRegistered(ActivityEventBase):
    type: Literal["agent_registered"]
    agent_id: EntityId


class AgentCall(ActivityEventBase):
    """A call to an agent: its outcome and response time."""
    value_field, success_field = "response_time_ms", "success"
    type: Literal["agent_call"]
    agent_id: EntityId
    success: StrictBool
    response_time_ms: Elapsed
    user_id: EntityId | None = None


class AgentHeartbeat(ActivityEventBase):
    """An agent's availability at this time; it holds until the next heartbeat, for at most the heartbeat
    timeout (docs/activity.md)."""
    success_field = "available"
    type: Literal["agent_heartbeat"]
    agent_id: EntityId
    available: StrictBool = True


class ValidationScore(ActivityEventBase):
    value_field = "score"
    type: Literal["validation_score"]
    agent_id: EntityId
    score: Score


class ReputationScore(ActivityEventBase):
    value_field = "score"
    type: Literal["reputation_score"]
    agent_id: EntityId
    score: Score


# --- Platform --------------------------------------------------------------------------------------


class Orchestration(ActivityEventBase):
    value_field, success_field, detail_fields = "duration_ms", "success", ("agent_count",)
    type: Literal["orchestration"]
    user_id: EntityId | None = None
    success: StrictBool | None = None
    duration_ms: Elapsed | None = None
    agent_count: Annotated[int, Field(strict=True, ge=0, le=10_000)] | None = None


class FraudAlert(ActivityEventBase):
    detail_fields = ("reason",)
    type: Literal["fraud_alert"]
    user_id: EntityId | None = None
    agent_id: EntityId | None = None
    reason: Annotated[str, Printable(500)] = ""


class SecurityEvent(ActivityEventBase):
    detail_fields = ("kind",)
    type: Literal["security_event"]
    kind: Annotated[str, Printable(200)] = ""
    user_id: EntityId | None = None


EVENT_MODELS: list[type[ActivityEventBase]] = [
    Signup, Session, PageView, Action, ContractCreated, ContractCompleted, ContractCancelled, ContractFailed, Bid,
    ContractWon, CreditsPurchased, CreditsSpent, Payment, AgentRegistered, AgentCall, AgentHeartbeat,
    ValidationScore, ReputationScore, Orchestration, FraudAlert, SecurityEvent,
]
EVENT_TYPES: dict[str, type[ActivityEventBase]] = {model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
                                        for model in EVENT_MODELS}
assert set(EVENT_TYPES) == set(EventType.values), "every stored type has a contract, and only those"

AnyEvent = Annotated[
    Signup | Session | PageView | Action | ContractCreated | ContractCompleted | ContractCancelled | ContractFailed
    | Bid | ContractWon | CreditsPurchased | CreditsSpent | Payment | AgentRegistered | AgentCall | AgentHeartbeat
    | ValidationScore | ReputationScore | Orchestration | FraudAlert | SecurityEvent,
    Field(discriminator="type"),
]


class ActivityEventItem(RootModel[AnyEvent], TaggedItem):
    """One activity event; ``type`` says which (docs/activity.md lists each type's fields)."""


# --- Recording -------------------------------------------------------------------------------------

COLUMNS = ["org_id", "type", "timestamp", "user_id", "agent_id", "contract_id", "value", "fee", "success", "detail",
           "event_id"]


@transaction.atomic
def record_activity(org: Organization, items: list[ActivityEventItem] | list[ActivityEventBase]) -> IngestResult:
    events = [item.root if isinstance(item, ActivityEventItem) else item for item in items]
    fresh = drop_duplicates(ActivityEvent, org, events)
    rows = []
    for event in fresh:
        columns = event.columns()
        rows.append((org.pk, event.type, event.timestamp, columns["user_id"], columns["agent_id"],
                     columns["contract_id"], columns["value"], columns["fee"], columns["success"],
                     json.dumps(columns["detail"]), event.event_id))
    for start in range(0, len(rows), INSERT_CHUNK):
        insert_rows(ActivityEvent._meta.db_table, COLUMNS, rows[start:start + INSERT_CHUNK])
    mark_dirty(org, [event.timestamp for event in fresh])
    return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))


def mark_dirty(org: Organization, moments: list[datetime]) -> None:
    """The periods these moments fall in are computed again by the next pass."""
    now = timezone.now()
    hours = {moment.replace(minute=0, second=0, microsecond=0) for moment in moments}
    periods = {period for hour in hours for period in enclosing_periods(hour)}
    ActivityDirtyPeriod.objects.bulk_create(
        [ActivityDirtyPeriod(org=org, period_type=period_type, period_start=start, marked_at=now)
         for period_type, start in sorted(periods)],
        update_conflicts=True, unique_fields=["org", "period_type", "period_start"], update_fields=["marked_at"])
