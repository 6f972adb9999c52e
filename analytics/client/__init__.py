"""The analytics client of the seeds (API.md, The Python client).

    from analytics import create_analytics_client

    client = create_analytics_client()          # ANALYTICS_BACKEND, default "sqlite"
    client.record_skill_usage(skill_id="parse_json", user_id="user_123", org_id="org_456",
                              success=True, latency_ms=145.5)

Backends: ``sqlite`` (alias ``db``: the configured Django database), ``prometheus``,
``otlp`` and ``wandb`` (an optional extra: ``pip install 'toolweaver-analytics[wandb]'``);
a comma-separated list fans out. Seed 001's class names are here too:
``SkillAnalytics`` (the store), ``OTLPMetrics`` and ``PrometheusMetrics``. In a plain Python process the
client sets Django up itself, and the store backend creates its tables on first
use. See docs/client.md.
"""

from __future__ import annotations

import os
import threading

BACKEND_NAMES = ("sqlite", "db", "prometheus", "otlp", "wandb", "http")
STORE_BACKENDS = ("sqlite", "db")

_setup_lock = threading.Lock()
_state = {"set_up_by_client": False}


class UnsupportedOperation(NotImplementedError):
    """A read asked of a push-only backend (it keeps nothing to read back)."""


def ensure_django() -> None:
    """Set Django up from the project's settings unless the process already did (manage.py, wsgi, pytest)."""
    from django.apps import apps

    if apps.ready:
        return
    with _setup_lock:
        if apps.ready:
            return
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "toolweaver_site.settings")
        django.setup()
        _state["set_up_by_client"] = True


def running_inside_django_server() -> bool:
    """False in a plain Python process where the client itself set Django up."""
    return not _state["set_up_by_client"]


def _records_into_store(name: str) -> bool:
    return name in STORE_BACKENDS or (name == "prometheus" and running_inside_django_server())


def _refuse(name: str):
    raise ValueError(f"Unknown analytics backend {name!r}: use one of {', '.join(BACKEND_NAMES)}, "
                     "or a comma-separated list of them.")


def _create_backend(name: str):
    if name in STORE_BACKENDS:
        from analytics.client.store import StoreBackend

        return StoreBackend(name=name)
    if name == "prometheus":
        from analytics.client.prometheus import PrometheusMetrics

        return PrometheusMetrics()
    if name == "wandb":
        from analytics.client.wandb_backend import WandbBackend

        return WandbBackend()
    if name == "http":
        from analytics.client.http import HttpBackend

        return HttpBackend()
    from analytics.client.otlp import OtlpBackend

    return OtlpBackend()


def create_analytics_client(backend: str | None = None):
    """The client for ``backend`` (or ANALYTICS_BACKEND); a comma-separated list fans out to each."""
    ensure_django()
    from django.conf import settings

    spec = backend if backend is not None else getattr(settings, "ANALYTICS_BACKEND", "") or "sqlite"
    if not isinstance(spec, str):
        raise ValueError(f"backend must be a string naming one of {', '.join(BACKEND_NAMES)}.")
    names: list[str] = []
    for part in spec.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in BACKEND_NAMES:
            _refuse(name)  # before any backend starts
        # sqlite and db name one store (and so does prometheus inside Django, where /metrics shows the store):
        # fanning out to both would record everything twice.
        duplicate = name in names or (_records_into_store(name) and any(_records_into_store(n) for n in names))
        if not duplicate:
            names.append(name)
    if not names:
        raise ValueError(f"No analytics backend named: use one of {', '.join(BACKEND_NAMES)}.")
    backends = [_create_backend(name) for name in names]
    if len(backends) == 1:
        return backends[0]
    from analytics.client.fanout import FanoutClient

    return FanoutClient(backends)


# Seed 001's class names for the backends (``from analytics import OTLPMetrics``): each is created without
# arguments and reads its configuration from the settings, that is the environment.
_SEED_CLASSES = {
    "SkillAnalytics": ("analytics.client.store", "StoreBackend"),  # "Automatic Setup": the sqlite store
    "OTLPMetrics": ("analytics.client.otlp", "OtlpBackend"),
    "PrometheusMetrics": ("analytics.client.prometheus", "PrometheusMetrics"),  # the backend that fits the process
}


def __getattr__(name):
    if name in _SEED_CLASSES:
        ensure_django()  # the backends import models: Django must be set up before their modules load
        from importlib import import_module

        module, attribute = _SEED_CLASSES[name]
        return getattr(import_module(module), attribute)
    raise AttributeError(f"module 'analytics.client' has no attribute {name!r}")
