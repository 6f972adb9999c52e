"""Organisations and the API tokens that act for them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

TOKEN_PREFIX = "twa_"
# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)

SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
slug_validator = RegexValidator(
    SLUG_PATTERN,
    "Use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit.",
)


class Organization(models.Model):
    """A tenant. Every event, rule and incident belongs to one (or to the platform scope)."""

    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @classmethod
    def get_or_create_by_slug(cls, slug: str) -> Organization:
        org, _ = cls.objects.get_or_create(slug=slug, defaults={"name": slug})
        return org


def hash_token(raw: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True, org__isnull=False)

    def revoke(self) -> int:
        """Revoke every active token of the queryset; returns how many."""
        active = self.filter(revoked_at__isnull=True)
        digests = list(active.values_list("key_hash", flat=True))
        count = active.update(revoked_at=timezone.now())
        FOUND_TOKENS.forget(digests)
        return count


class FoundTokens:
    """Tokens this process found active in the last API_TOKEN_CACHE_SECONDS, by hash: a client sending
    requests back to back pays one lookup per period, not one per request.

    A token revoked or deleted through this process is forgotten at once; the other processes (gunicorn
    workers, hosts) keep their copy until it is that many seconds old — the longest a revoked token can still
    be accepted. 0 turns the cache off.
    """

    MAX_ENTRIES = 10_000  # past this, start again: tokens are few, so only a flood of new ones gets here

    def __init__(self):
        self._found: dict[str, tuple[float, ApiToken]] = {}

    def get(self, digest: str) -> ApiToken | None:
        entry = self._found.get(digest)
        if entry is None or time.monotonic() - entry[0] >= settings.API_TOKEN_CACHE_SECONDS:
            return None
        return entry[1]

    def keep(self, digest: str, token: ApiToken) -> None:
        if settings.API_TOKEN_CACHE_SECONDS <= 0:
            return
        if len(self._found) >= self.MAX_ENTRIES:
            self._found = {}
        self._found[digest] = (time.monotonic(), token)

    def forget(self, digests) -> None:
        for digest in digests:
            self._found.pop(digest, None)

    def clear(self) -> None:
        self._found = {}


FOUND_TOKENS = FoundTokens()


class ApiToken(models.Model):
    """A bearer token scoped to one org. Only its hash is stored; the token is shown once."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, editable=False, help_text="First characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["org__slug", "-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name or 'token'} ({self.prefix}…) for {self.org}"

    @classmethod
    def issue(cls, org: Organization, name: str = "", read_only: bool = False) -> tuple[ApiToken, str]:
        """Create a token; returns it with the raw secret, which is not kept anywhere."""
        token = cls(org=org, name=name, read_only=read_only)
        raw = token.set_new_secret()
        token.save()
        return token, raw

    def set_new_secret(self) -> str:
        """Give an unsaved token its secret; returns the secret, of which only a hash is kept."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.prefix = raw[: len(TOKEN_PREFIX) + 6]
        self.key_hash = hash_token(raw)
        return raw

    @classmethod
    def find_active(cls, raw: str) -> ApiToken | None:
        """The active token whose secret is ``raw``, or None.

        The database looks the token up by the SHA-256 of ``raw``, so what an index lookup's timing could tell
        is how far the hash of a guess matches a stored hash — which says nothing about any secret, since
        nobody can steer a hash. The found row's hash is still compared to the guess's in constant time
        (``hmac.compare_digest``), so that no comparison of secret material in this code depends on timing.
        """
        digest = hash_token(raw)
        token = FOUND_TOKENS.get(digest)
        if token is None:
            token = cls.objects.active().select_related("org").filter(key_hash=digest).first()
            if token is None:
                return None
            FOUND_TOKENS.keep(digest, token)
        if not hmac.compare_digest(token.key_hash, digest):
            return None
        return token

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    def touch(self, now=None) -> None:
        """Record use, at most once per LAST_USED_RESOLUTION, with a conditional update."""
        now = now or timezone.now()
        if self.last_used_at and now - self.last_used_at < LAST_USED_RESOLUTION:
            return
        stale = models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ApiToken.objects.filter(stale, pk=self.pk).update(last_used_at=now)
        self.last_used_at = now


@receiver(post_save, sender=ApiToken)
@receiver(post_delete, sender=ApiToken)
def _forget_changed_token(sender, instance: ApiToken, **kwargs) -> None:
    # A save may revoke the token or change what it may do (read_only): the next request looks it up again.
    FOUND_TOKENS.forget([instance.key_hash])


@receiver(post_delete, sender=Organization)
def _forget_tokens_of_deleted_orgs(sender, **kwargs) -> None:
    FOUND_TOKENS.clear()
