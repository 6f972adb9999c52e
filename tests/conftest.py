"""Shared fixtures: the personas every API test speaks as."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from analytics.models import ApiToken, Organization

API = "/api/v1/analytics/"
# The test receivers on loopback (tests/receivers.py), and the "internal receiver" address that
# tests/alerts/test_notifications_api.py saves: the suite allowlists them as an operator would.
ALLOWLISTED_RECEIVERS = ("127.0.0.1", "::1", "localhost", "10.0.0.5")


def pytest_configure(config):
    from django.conf import settings

    # Password hashing is deliberately slow; the tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The tests read /metrics right after each write: health scores computed at every scrape.
    settings.PROMETHEUS_HEALTH_SCORE_SECONDS = 0
    # Channels may not send to loopback or private addresses unless allowlisted; the environment too, for the
    # worker processes that the integration tests start.
    os.environ["NOTIFICATION_URL_ALLOWLIST"] = ",".join(ALLOWLISTED_RECEIVERS)
    settings.NOTIFICATION_URL_ALLOWLIST = list(ALLOWLISTED_RECEIVERS)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Every test starts with unspent API budgets (the counters live in the local-memory cache)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_rollup_coverage():
    """The query layer caches which rollup tiers are built for a second; a test's rolled-back rollups must
    not answer the next test's questions."""
    from analytics.services.rollups import _forget_built_tiers

    _forget_built_tiers()
    yield
    _forget_built_tiers()


@dataclass
class Persona:
    """Someone calling the API: a client already authenticated as them."""

    name: str
    client: APIClient
    org: Organization | None = None
    token: ApiToken | None = None
    raw_token: str | None = None

    def get(self, path, params=None, **kwargs):
        return self.client.get(_url(path), params, **kwargs)

    def post(self, path, data=None, **kwargs):
        return self.client.post(_url(path), data, format="json", **kwargs)

    def patch(self, path, data=None, **kwargs):
        return self.client.patch(_url(path), data, format="json", **kwargs)

    def delete(self, path, **kwargs):
        return self.client.delete(_url(path), **kwargs)


def _url(path: str) -> str:
    return path if path.startswith("/") else API + path


def token_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@dataclass
class Personas:
    org: Organization
    other_org: Organization
    member: Persona  # a writing token of `org`
    reader: Persona  # a read-only token of `org`
    outsider: Persona  # a writing token of `other_org`
    staff: Persona  # a staff user with an admin session
    anonymous: Persona


@pytest.fixture
def personas(db) -> Personas:
    org = Organization.objects.create(slug="acme", name="Acme")
    other_org = Organization.objects.create(slug="globex", name="Globex")

    def with_token(name, token_org, read_only=False):
        token, raw = ApiToken.issue(token_org, name=name, read_only=read_only)
        return Persona(name, token_client(raw), org=token_org, token=token, raw_token=raw)

    staff_user = get_user_model().objects.create_user("ops", "ops@example.com", "pw", is_staff=True)
    staff_client = APIClient()
    staff_client.force_login(staff_user)
    return Personas(
        org=org,
        other_org=other_org,
        member=with_token("member", org),
        reader=with_token("reader", org, read_only=True),
        outsider=with_token("outsider", other_org),
        staff=Persona("staff", staff_client),
        anonymous=Persona("anonymous", APIClient()),
    )
