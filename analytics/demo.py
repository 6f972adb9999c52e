"""Analytics' part of seed_demo: two orgs, the staff login, a token per org, then each part's data."""

from analytics import demo_activity, demo_leaderboards
from analytics.demo_metrics import seed_metrics
from analytics.demo_skills import seed_skills
from analytics.models import ApiToken, Organization
from analytics.platform.accounts import ensure_local_admin, save_demo_token

DEMO_ORGS = {"acme": "Acme Robotics", "globex": "Globex Corporation"}


def seed(context) -> None:
    for slug, name in DEMO_ORGS.items():
        org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
        if not ApiToken.objects.active().filter(org=org, name="demo").exists():
            _, raw = ApiToken.issue(org, name="demo")
            path = save_demo_token(slug, raw)
            context.log(f"demo token for {slug} written to {path}")
    ensure_local_admin()
    seed_skills(context)
    demo_leaderboards.seed(context)
    seed_metrics(context)
    demo_activity.seed(context)
