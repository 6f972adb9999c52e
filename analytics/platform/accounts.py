"""Organisations, tokens and the local admin login."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from analytics.platform.tenancy import ApiToken, Organization, slug_validator


@transaction.atomic
def create_api_token(org_slug: str, name: str = "", read_only: bool = False) -> tuple[ApiToken, str]:
    """Create a token for the org (created if missing). Returns the token and its secret."""
    slug_validator(org_slug)
    org = Organization.get_or_create_by_slug(org_slug)
    return ApiToken.issue(org, name=name, read_only=read_only)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def ensure_local_admin(username: str = "admin") -> tuple[str, str]:
    """A staff superuser for the local platform, its password kept in the data directory (mode 0600)."""
    password_file = Path(settings.DATA_DIR) / "admin-password"
    password = password_file.read_text().strip() if password_file.exists() else ""
    if not password:
        password = secrets.token_urlsafe(12)
        _write_private(password_file, password)
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"email": f"{username}@localhost"})
    user.is_staff = user.is_superuser = user.is_active = True
    if not user.check_password(password):
        user.set_password(password)
    user.save()
    return username, password


def save_demo_token(label: str, raw: str) -> Path:
    path = Path(settings.DATA_DIR) / "demo-tokens.txt"
    existing = path.read_text() if path.exists() else ""
    _write_private(path, existing + f"{label}\t{raw}\n")
    return path


__all__ = ["ValidationError", "create_api_token", "ensure_local_admin", "save_demo_token"]
