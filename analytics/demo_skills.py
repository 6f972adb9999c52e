"""Skill analytics' part of seed_demo: 30 skills with different behaviours, with ratings and installs.

Among them: a reliable one, one getting slower, a failing one, a new one trending
up, and a deprecated one fading out; the rest are ordinary, each with its own
volume, latency and failure rate. Recorded through the same services as the API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from analytics.models import Organization, Skill, SkillExecution
from analytics.services.skills import (
    ExecutionItem,
    InstallItem,
    RatingItem,
    record_executions,
    record_installs,
    record_ratings,
)

DEMO_ORG_SLUGS = ("acme", "globex")
ERROR_TYPES = ["TimeoutError", "ValidationError", "UpstreamError", "RateLimited"]
ORDINARY_SKILLS = [
    "summarize_text", "translate_text", "extract_entities", "classify_intent", "sql_query", "web_search",
    "fetch_url", "csv_to_json", "send_email", "create_ticket", "resize_image", "ocr_document", "sentiment",
    "code_review", "unit_test_gen", "regex_builder", "calendar_lookup", "weather_lookup", "currency_convert",
    "geocode_address", "pdf_to_text", "markdown_render", "vector_search", "dedupe_records", "schema_infer",
]
CHUNK = 5000


@dataclass
class Behaviour:
    skill_id: str
    per_hour: float  # executions per hour at the daily peak
    latency_ms: float  # median latency
    failure_rate: float
    name: str = ""
    started_days_ago: float | None = None  # a new skill: no history before this
    growth: float = 0.0  # volume multiplier gained per day since it started (trending)
    slowdown: float = 0.0  # latency multiplier gained per day (getting slower)
    fade: float = 0.0  # volume lost per day (deprecated)
    quality: float = 4.0  # mean rating
    deprecated: bool = False


def demo_behaviours(rng) -> list[Behaviour]:
    special = [
        Behaviour("parse_json", 10, 45, 0.003, name="Parse JSON (reliable)", quality=4.8),
        Behaviour("render_report", 3, 900, 0.02, name="Render report (getting slower)", slowdown=0.05, quality=3.1),
        Behaviour("legacy_scraper", 4, 600, 0.35, name="Legacy scraper (failing)", quality=2.0),
        Behaviour("agent_planner", 8, 250, 0.03, name="Agent planner (new, trending)", started_days_ago=6,
                  growth=0.6, quality=4.6),
        Behaviour("xml_to_yaml", 2, 120, 0.05, name="XML to YAML (deprecated)", fade=0.03, quality=3.0,
                  deprecated=True),
    ]
    ordinary = [
        Behaviour(skill_id, per_hour=round(rng.uniform(0.3, 4), 2), latency_ms=round(rng.lognormvariate(5, 0.8)),
                  failure_rate=round(rng.choice([0.005, 0.01, 0.02, 0.05, 0.1]), 3),
                  quality=round(rng.uniform(2.8, 4.7), 1))
        for skill_id in ORDINARY_SKILLS
    ]
    return special + ordinary


def _executions(context, behaviour: Behaviour, org_index: int) -> list[ExecutionItem]:
    rng, now = context.rng, context.now
    share = 1.0 if org_index == 0 else 0.4  # the second org uses everything less
    items: list[ExecutionItem] = []
    for moment in context.moments(behaviour.per_hour * share * 3):
        age_days = (now - moment).total_seconds() / 86400
        if behaviour.started_days_ago is not None and age_days > behaviour.started_days_ago:
            continue
        volume = 1.0
        if behaviour.started_days_ago is not None:
            volume = min(1.0, 0.05 * math.exp(behaviour.growth * (behaviour.started_days_ago - age_days)))
        volume *= max(0.0, 1 - behaviour.fade * (context.days - age_days))
        if rng.random() > volume / 3:  # moments() ran at three times the rate: thin it to the wanted volume
            continue
        days_in = context.days - age_days
        latency = behaviour.latency_ms * (1 + behaviour.slowdown * days_in) * rng.lognormvariate(0, 0.35)
        failed = rng.random() < behaviour.failure_rate
        items.append(ExecutionItem(
            skill_id=behaviour.skill_id, success=not failed, latency_ms=round(latency, 1), timestamp=moment,
            user_id=f"user_{rng.randint(1, 40):03d}", error_type=rng.choice(ERROR_TYPES) if failed else "",
            skill_version="1.0" if age_days > 10 else "1.1",
            event_id=f"demo:{behaviour.skill_id}:{org_index}:{len(items)}",
        ))
    return items


def seed_skills(context) -> None:
    orgs = [Organization.get_or_create_by_slug(slug) for slug in DEMO_ORG_SLUGS]
    if SkillExecution.objects.filter(org__in=orgs, event_id__startswith="demo:").exists():
        context.log("skills: demo data present, left as it is")
        return
    rng = context.rng
    total = 0
    for behaviour in demo_behaviours(rng):
        for index, org in enumerate(orgs):
            items = _executions(context, behaviour, index)
            for start in range(0, len(items), CHUNK):
                total += record_executions(org, items[start:start + CHUNK]).accepted
            raters = rng.randint(3, 25) if behaviour.started_days_ago is None else rng.randint(8, 20)
            record_ratings(org, [
                RatingItem(skill_id=behaviour.skill_id, user_id=f"user_{user:03d}",
                           rating=max(1, min(5, round(rng.gauss(behaviour.quality, 0.8)))),
                           timestamp=context.now - timedelta(days=rng.uniform(0, context.days)))
                for user in rng.sample(range(1, 41), raters)
            ])
            record_installs(org, [
                InstallItem(skill_id=behaviour.skill_id, user_id=f"user_{user:03d}",
                            timestamp=context.now - timedelta(days=rng.uniform(0, behaviour.started_days_ago
                                                                                  or context.days)))
                for user in rng.sample(range(1, 41), rng.randint(2, 30))
            ])
        Skill.objects.filter(skill_id=behaviour.skill_id).update(name=behaviour.name, deprecated=behaviour.deprecated)
    context.log(f"skills: {total} executions of 30 skills over {context.days} days")
