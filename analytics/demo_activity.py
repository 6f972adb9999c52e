"""Activity's part of seed_demo: 300 users and 40 agents of the org "acme" over the demo period, then the day
periods of it and the hour periods of its last day computed.

Users differ in how engaged they are (some active most days, some rarely); a third of them sign up during the
period. Agents differ in speed and reliability; ten register during the period; one, ``agent_07``, is flaky
(a quarter of its calls fail) and was unavailable for an hour of the last day. Heartbeats (every 4 minutes, within the
5-minute timeout) cover the last day only, whose hours are computed, so uptime shows there. Recorded through
``record_activity`` like the API; every event has a ``demo:activity:`` id, so a second run adds nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from analytics.models import ActivityEvent, Organization
from analytics.services import activity as events
from analytics.services.activity import record_activity
from analytics.services.activity_periods import compute_periods

ORG_SLUG = "acme"
USERS = 300
AGENTS = 40
NEW_USERS = 100  # the last ones sign up during the period
NEW_AGENTS = 10
FLAKY_AGENT = "agent_07"
HEARTBEAT_EVERY = timedelta(minutes=4)
EVENT_ID_PREFIX = "demo:activity:"
BATCH = 10_000
PLATFORM_FEE = 0.15
PAGES = ["/dashboard", "/agents", "/contracts", "/credits", "/orchestrations", "/settings"]
ACTIONS = ["search", "filter", "compare", "export", "share"]


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    engagement: float  # the chance of being active on a given day
    joined: datetime


@dataclass(frozen=True)
class DemoAgent:
    agent_id: str
    response_time_ms: float  # median
    failure_rate: float
    quality: float  # 0-100
    joined: datetime


def seed(context) -> None:
    org = Organization.get_or_create_by_slug(ORG_SLUG)
    if ActivityEvent.objects.filter(org=org, event_id__startswith=EVENT_ID_PREFIX).exists():
        context.log("activity: demo data present, left as it is")
        return
    start = context.now - timedelta(days=context.days)
    items = list(demo_events(random.Random(ORG_SLUG), start, context.now))
    for first in range(0, len(items), BATCH):
        record_activity(org, items[first:first + BATCH])
    days = compute_periods("day", start, context.now, org=org, now=context.now)
    hours = compute_periods("hour", context.now - timedelta(days=1), context.now, org=org, now=context.now)
    context.log(f"activity for {ORG_SLUG}: {len(items)} events of {USERS} users and {AGENTS} agents; "
                f"days: {days.line()}; hours: {hours.line()}")


def demo_events(rng: random.Random, start: datetime, now: datetime) -> Iterator[events.ActivityEventBase]:
    """Every event of the demo, each with its demo event id."""
    users = _users(rng, start, now)
    agents = _agents(rng, start, now)
    generators = [_signups(users, agents), _user_days(rng, users, agents, start, now),
                  _agent_days(rng, agents, start, now), _heartbeats(agents, now), _incidents(rng, users, start, now)]
    number = 0
    for generator in generators:
        for event in generator:
            number += 1
            yield event.model_copy(update={"event_id": f"{EVENT_ID_PREFIX}{number}"})


def _users(rng: random.Random, start: datetime, now: datetime) -> list[DemoUser]:
    span = (now - start).total_seconds()
    users = []
    for number in range(1, USERS + 1):
        joined = (start + timedelta(seconds=rng.uniform(0, span)) if number > USERS - NEW_USERS
                  else start - timedelta(days=rng.uniform(1, 60)))
        users.append(DemoUser(f"user_{number:03d}", engagement=rng.betavariate(2, 3), joined=joined))
    return users


def _agents(rng: random.Random, start: datetime, now: datetime) -> list[DemoAgent]:
    span = (now - start).total_seconds()
    agents = []
    for number in range(1, AGENTS + 1):
        agent_id = f"agent_{number:02d}"
        joined = (start + timedelta(seconds=rng.uniform(0, span * 0.8)) if number > AGENTS - NEW_AGENTS
                  else start - timedelta(days=rng.uniform(1, 90)))
        flaky = agent_id == FLAKY_AGENT
        agents.append(DemoAgent(agent_id, response_time_ms=rng.lognormvariate(5, 0.6),
                                failure_rate=0.25 if flaky else rng.choice([0.005, 0.01, 0.02, 0.05]),
                                quality=45.0 if flaky else rng.uniform(60, 98), joined=joined))
    return agents


def _signups(users: list[DemoUser], agents: list[DemoAgent]) -> Iterator[events.ActivityEventBase]:
    for user in users:
        yield events.Signup(type="signup", user_id=user.user_id, timestamp=user.joined)
    for agent in agents:
        yield events.AgentRegistered(type="agent_registered", agent_id=agent.agent_id, timestamp=agent.joined)


def _moments_of(rng: random.Random, since: datetime, now: datetime):
    """A function giving random moments of the day from ``since``, none after ``now``."""
    day_end = min(now, since + timedelta(days=1))
    return lambda: since + (day_end - since) * rng.random()


def _days(start: datetime, now: datetime) -> Iterator[datetime]:
    day = start
    while day < now:
        yield day
        day += timedelta(days=1)


def _user_days(rng: random.Random, users: list[DemoUser], agents: list[DemoAgent], start: datetime,
               now: datetime) -> Iterator[events.ActivityEventBase]:
    """Each user's days: sessions, page views and actions; sometimes credits, agent calls, a contract."""
    contract_number = 0
    for day in _days(start, now):
        working = [agent for agent in agents if agent.joined < day]
        for user in users:
            if user.joined > day or rng.random() > user.engagement:
                continue
            moment = _moments_of(rng, max(day, user.joined), now)
            for _ in range(rng.randint(1, 3)):
                yield events.Session(type="session", user_id=user.user_id, timestamp=moment(),
                                     active_seconds=round(rng.lognormvariate(6, 0.7)))
            for _ in range(rng.randint(2, 12)):
                yield events.PageView(type="page_view", user_id=user.user_id, path=rng.choice(PAGES),
                                      timestamp=moment())
            for _ in range(rng.randint(0, 6)):
                yield events.Action(type="action", user_id=user.user_id, name=rng.choice(ACTIONS),
                                    timestamp=moment())
            if rng.random() < 0.1:
                yield events.CreditsPurchased(type="credits_purchased", user_id=user.user_id, timestamp=moment(),
                                              credits=float(rng.choice([100, 250, 500, 1000])))
            for agent in rng.sample(working, k=min(len(working), rng.choice([0, 0, 1, 2, 3]))):
                called_at = moment()
                yield events.AgentCall(type="agent_call", agent_id=agent.agent_id, user_id=user.user_id,
                                       timestamp=called_at, success=rng.random() > agent.failure_rate,
                                       response_time_ms=round(agent.response_time_ms * rng.lognormvariate(0, 0.4), 1))
                yield events.CreditsSpent(type="credits_spent", user_id=user.user_id, agent_id=agent.agent_id,
                                          timestamp=called_at, credits=float(rng.randint(1, 20)))
            if rng.random() < 0.1:
                yield events.Orchestration(type="orchestration", user_id=user.user_id, timestamp=moment(),
                                           success=rng.random() > 0.05, duration_ms=round(rng.uniform(500, 8000)),
                                           agent_count=rng.randint(2, 5))
            if rng.random() < 0.08 and len(working) >= 3:
                contract_number += 1
                yield from _contract(rng, f"contract_{contract_number:05d}", user, rng.sample(working, 3),
                                     moment(), now)


def _contract(rng: random.Random, contract_id: str, user: DemoUser, bidders: list[DemoAgent], created: datetime,
              now: datetime) -> Iterator[events.ActivityEventBase]:
    """Created, three bids, one won; then completed and paid, cancelled or failed, unless still open."""
    amount = float(rng.randint(20, 400))
    yield events.ContractCreated(type="contract_created", contract_id=contract_id, user_id=user.user_id,
                                 amount=amount, timestamp=created)
    for agent in bidders:
        yield events.Bid(type="bid", agent_id=agent.agent_id, contract_id=contract_id, timestamp=created,
                         price=round(amount * rng.uniform(0.7, 1.1), 2))
    winner = max(bidders, key=lambda agent: agent.quality)
    yield events.ContractWon(type="contract_won", agent_id=winner.agent_id, contract_id=contract_id,
                             timestamp=created)
    ended = created + timedelta(hours=rng.uniform(1, 48))
    if ended >= now:
        return
    outcome = rng.random()
    ids = {"contract_id": contract_id, "user_id": user.user_id, "agent_id": winner.agent_id, "timestamp": ended}
    if outcome < 0.8:
        yield events.ContractCompleted(type="contract_completed", **ids)
        yield events.Payment(type="payment", amount=amount, platform_fee=round(amount * PLATFORM_FEE, 2), **ids)
    elif outcome < 0.9:
        yield events.ContractCancelled(type="contract_cancelled", **ids)
    else:
        yield events.ContractFailed(type="contract_failed", **ids)


def _agent_days(rng: random.Random, agents: list[DemoAgent], start: datetime,
                now: datetime) -> Iterator[events.ActivityEventBase]:
    """A validation score and a reputation score per agent and day."""
    for day in _days(start, now):
        for agent in agents:
            if agent.joined > day:
                continue
            moment = day + timedelta(hours=rng.uniform(0, 24))
            if moment >= now:
                continue
            yield events.ValidationScore(type="validation_score", agent_id=agent.agent_id, timestamp=moment,
                                         score=round(min(100.0, max(0.0, rng.gauss(agent.quality, 5))), 1))
            yield events.ReputationScore(type="reputation_score", agent_id=agent.agent_id, timestamp=moment,
                                         score=round(min(100.0, max(0.0, rng.gauss(agent.quality, 2))), 1))


def _heartbeats(agents: list[DemoAgent], now: datetime) -> Iterator[events.ActivityEventBase]:
    """Every agent's heartbeats over the last day; the flaky one reports unavailable for an hour of it."""
    outage_start, outage_end = now - timedelta(hours=10), now - timedelta(hours=9)
    for agent in agents:
        moment = now - timedelta(days=1)
        while moment < now:
            down = agent.agent_id == FLAKY_AGENT and outage_start <= moment < outage_end
            yield events.AgentHeartbeat(type="agent_heartbeat", agent_id=agent.agent_id, timestamp=moment,
                                        available=not down)
            moment += HEARTBEAT_EVERY


def _incidents(rng: random.Random, users: list[DemoUser], start: datetime,
               now: datetime) -> Iterator[events.ActivityEventBase]:
    """A few fraud alerts and security events over the period."""
    span = (now - start).total_seconds()
    for _ in range(6):
        yield events.FraudAlert(type="fraud_alert", user_id=rng.choice(users).user_id, reason="card declined twice",
                                timestamp=start + timedelta(seconds=rng.uniform(0, span)))
    for _ in range(12):
        yield events.SecurityEvent(type="security_event", kind=rng.choice(["failed_login", "token_revoked"]),
                                   user_id=rng.choice(users).user_id,
                                   timestamp=start + timedelta(seconds=rng.uniform(0, span)))
