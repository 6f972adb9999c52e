"""Tokens from the command line, demo data, schedules, probes and the admin's token page."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from analytics.models import ApiToken, Organization
from analytics.platform.collectors import declared_periodic_jobs, sync_periodic_tasks
from tests.conftest import token_client

pytestmark = pytest.mark.django_db


def test_create_api_token_prints_the_token_alone_and_it_reads_the_api():
    out = StringIO()
    call_command("create_api_token", "--org", "initech", "--name", "ci", stdout=out)
    raw = out.getvalue().strip()
    assert "\n" not in raw and raw.startswith("twa_")
    token = ApiToken.objects.get()
    assert token.org.slug == "initech" and token.name == "ci" and not token.read_only
    assert raw not in (token.key_hash, token.prefix)
    assert token_client(raw).get("/api/v1/analytics/me").json()["org"] == "initech"


def test_create_api_token_read_only_and_bad_slug():
    out = StringIO()
    call_command("create_api_token", "--org", "initech", "--read-only", stdout=out)
    assert ApiToken.objects.get().read_only
    with pytest.raises(CommandError, match="--org"):
        call_command("create_api_token", "--org", "bad slug!", stdout=StringIO())


def test_seed_demo_is_idempotent(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    call_command("seed_demo", "--days", "2", stderr=StringIO())
    call_command("seed_demo", "--days", "2", stderr=StringIO())
    assert set(Organization.objects.values_list("slug", flat=True)) >= {"acme", "globex"}
    assert ApiToken.objects.filter(name="demo").count() == 2
    tokens = (tmp_path / "demo-tokens.txt").read_text().splitlines()
    assert len(tokens) == 2
    assert token_client(tokens[0].split("\t")[1]).get("/api/v1/analytics/me").status_code == 200


def test_periodic_jobs_are_upserted_and_admin_edits_survive():
    names = {job.name for job in declared_periodic_jobs()}
    assert "cleanup old data" in names
    PeriodicTask.objects.all().delete()
    assert sync_periodic_tasks()["created"] == len(names)
    task = PeriodicTask.objects.get(name="cleanup old data")
    assert task.task == "analytics.cleanup_old_data" and task.crontab.hour == "3"
    # An operator moves the job in the admin: a later sync keeps the change.
    task.crontab = None
    task.interval = IntervalSchedule.objects.create(every=7200, period=IntervalSchedule.SECONDS)
    task.save()
    assert sync_periodic_tasks() == {"created": 0, "updated": 0}
    assert PeriodicTask.objects.get(name="cleanup old data").interval.every == 7200
    sync_periodic_tasks(reset=True)
    assert PeriodicTask.objects.get(name="cleanup old data").crontab.hour == "3"


def test_probes(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def test_admin_creates_a_token_and_shows_it_once(admin_client):
    org = Organization.objects.create(slug="acme")
    response = admin_client.post(
        "/admin/analytics/apitoken/add/", {"org": org.pk, "name": "from admin"}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    token = ApiToken.objects.get(name="from admin")
    raw = next(word for message in shown for word in message.split() if word.startswith("twa_"))
    assert token_client(raw).get("/api/v1/analytics/me").json()["org"] == "acme"
    page = admin_client.get(f"/admin/analytics/apitoken/{token.pk}/change/").content.decode()
    assert raw not in page and token.prefix in page


def test_admin_revoke_action(admin_client):
    org = Organization.objects.create(slug="acme")
    token, raw = ApiToken.issue(org)
    admin_client.post("/admin/analytics/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert token_client(raw).get("/api/v1/analytics/me").status_code == 401
