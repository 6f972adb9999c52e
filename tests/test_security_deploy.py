"""The production settings pass ``manage.py check --deploy --fail-level WARNING`` (docs/security.md, "Deployment
checks"): run as a child process with the environment docs/configuration.md prescribes for production, and, to
show that the check is the one that would catch a slip, once more with debug on."""

from __future__ import annotations

import secrets

from tests.test_settings import run_manage

PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "analytics.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://analytics.example.com",
    "DJANGO_SECURE_SSL": "true",  # the default with debug off; the test run itself sets false
    "CACHE_URL": "redis://127.0.0.1:6379/2",
    "API_THROTTLE_RATE": "6000/min",
    "NOTIFICATION_URL_ALLOWLIST": "",
    "SITE_URL": "https://analytics.example.com",
}


def test_the_production_settings_pass_the_deploy_checks(tmp_path):
    result = run_manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_debug_on_fails_them(tmp_path):
    result = run_manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING",
                        **{**PRODUCTION, "DJANGO_DEBUG": "true", "DJANGO_SECURE_SSL": "false"})
    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG in deployment
    assert "security.W008" in result.stderr  # no HTTPS redirect
