"""Leaderboards' part of seed_demo: some recommendations served in the past (so that their follow-up is
known), then the boards computed into the cache. Runs after the skills' part, on its executions.
"""

from __future__ import annotations

from datetime import timedelta

from analytics.demo_skills import DEMO_ORG_SLUGS
from analytics.models import Organization, RecommendationLog
from analytics.platform.windows import Window
from analytics.services.leaderboards import compute_leaderboards
from analytics.services.recommendations import serve_recommendations

DEMO_USERS = [f"user_{number:03d}" for number in range(1, 13)] + ["new_user_1", "new_user_2"]
SERVED_DAYS_AGO = (9, 6, 3, 1)
HISTORY = timedelta(days=1)  # a short history, so that a demo user has not yet tried every skill


def seed(context) -> None:
    orgs = [Organization.get_or_create_by_slug(slug) for slug in DEMO_ORG_SLUGS]
    if RecommendationLog.objects.filter(org__in=orgs).exists():
        context.log("leaderboards: demo recommendations present, left as they are")
    else:
        served = 0
        for days_ago in SERVED_DAYS_AGO:
            moment = context.now - timedelta(days=days_ago)
            if moment - HISTORY < context.now - timedelta(days=context.days):
                continue
            for org in orgs:
                for user_id in DEMO_USERS:
                    served += len(serve_recommendations(user_id, Window(moment - HISTORY, moment), org=org, limit=3,
                                                        now=moment))
        context.log(f"leaderboards: {served} recommendations logged")
    result = compute_leaderboards(now=context.now)
    context.log(f"leaderboards: {result['rows']} rows in {result['boards']} boards")
