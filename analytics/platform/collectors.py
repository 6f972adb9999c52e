"""The shared mechanisms each app plugs into (DESIGN.md, "Shared mechanisms, one each").

Each app may have, beside its models:
- ``schedule.py`` with ``PERIODIC_JOBS``: a list of ``PeriodicJob``, upserted into
  django-celery-beat by ``sync_periodic_tasks`` (after ``migrate`` and by ``manage.py sync_schedules``);
- ``demo.py`` with ``seed(context)``: its part of ``manage.py seed_demo``;
- ``retention.py`` with ``cleanup(now) -> {label: rows_removed}``: its part of ``manage.py cleanup_old_data``.

The collectors find these modules by name in every installed app, in INSTALLED_APPS
order, so no app imports a higher one and none edits another's list.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module
from types import ModuleType

from django.apps import apps
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules, module_has_submodule

logger = logging.getLogger(__name__)

def app_modules(module_name: str) -> Iterator[ModuleType]:
    """``<app>.<module_name>`` of every installed app that has one, in INSTALLED_APPS order.

    Third-party apps are skipped unless they declare the hook the collector reads (see each collector).
    """
    autodiscover_modules(module_name)
    for app_config in apps.get_app_configs():
        if module_has_submodule(app_config.module, module_name):
            yield import_module(f"{app_config.name}.{module_name}")


# --- Periodic jobs --------------------------------------------------------------


@dataclass(frozen=True)
class PeriodicJob:
    """A scheduled Celery task. ``every`` for an interval, or ``crontab`` fields (UTC)."""

    name: str
    task: str
    every: timedelta | None = None
    crontab: dict = field(default_factory=dict)
    description: str = ""
    kwargs: dict = field(default_factory=dict)

    def schedule_fields(self) -> dict:
        from django_celery_beat.models import CrontabSchedule, IntervalSchedule

        if self.every is not None:
            seconds = int(self.every.total_seconds())
            interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            return {"interval": interval, "crontab": None}
        cron = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
        cron.update(self.crontab)
        schedule, _ = CrontabSchedule.objects.get_or_create(timezone="UTC", **cron)
        return {"crontab": schedule, "interval": None}


def declared_periodic_jobs() -> list[PeriodicJob]:
    return [job for module in app_modules("schedule") for job in getattr(module, "PERIODIC_JOBS", [])]


def sync_periodic_tasks(reset: bool = False) -> dict[str, int]:
    """Create the declared periodic tasks that are missing.

    Existing rows belong to the admin (an operator may have changed the schedule or
    disabled a job): only their task path is kept current, unless ``reset``.
    """
    import json

    from django_celery_beat.models import PeriodicTask

    created = updated = 0
    with transaction.atomic():
        for job in declared_periodic_jobs():
            existing = PeriodicTask.objects.filter(name=job.name).first()
            if existing is None:
                PeriodicTask.objects.create(
                    name=job.name, task=job.task, description=job.description,
                    kwargs=json.dumps(job.kwargs), **job.schedule_fields(),
                )
                created += 1
            elif reset or existing.task != job.task:
                existing.task = job.task
                if reset:
                    for key, value in job.schedule_fields().items():
                        setattr(existing, key, value)
                    existing.description = job.description
                    existing.kwargs = json.dumps(job.kwargs)
                    existing.enabled = True
                existing.save()
                updated += 1
    return {"created": created, "updated": updated}


def sync_periodic_tasks_after_migrate(sender, app_config=None, **kwargs):
    # post_migrate fires once per migrated app; do the work once, after the last installed app.
    last_app = [config for config in apps.get_app_configs() if config.models_module is not None][-1]
    if app_config is not None and app_config.label == last_app.label:
        result = sync_periodic_tasks()
        if result["created"]:
            logger.info("periodic tasks: %(created)d created", result)


# --- Demo data ------------------------------------------------------------------


@dataclass
class DemoContext:
    days: int
    now: datetime
    rng: random.Random
    log: Callable[[str], None]

    def moments(self, per_hour: float) -> Iterator[datetime]:
        """Event times over the demo period, denser in the working day (a daily pattern)."""
        start = self.now - timedelta(days=self.days)
        hour = start.replace(minute=0, second=0, microsecond=0)
        while hour < self.now:
            daily = 0.35 + 0.65 * max(0.0, 1 - abs(hour.hour - 14) / 9)  # peak at 14:00 UTC
            count = int(per_hour * daily + self.rng.random())
            for _ in range(count):
                moment = hour + timedelta(seconds=self.rng.uniform(0, 3600))
                if start <= moment < self.now:
                    yield moment
            hour += timedelta(hours=1)


def seed_demo(days: int = 30, log=print) -> dict[str, float]:
    """Run every app's demo part; each is idempotent. Returns seconds per app."""
    context = DemoContext(days=days, now=timezone.now(), rng=random.Random(20261123), log=log)
    timings = {}
    for module in app_modules("demo"):
        started = time.monotonic()
        if not hasattr(module, "seed"):
            continue
        module.seed(context)
        timings[module.__name__] = round(time.monotonic() - started, 2)
    return timings


# --- Retention --------------------------------------------------------------------


def cleanup_old_data(now: datetime | None = None) -> dict[str, int]:
    """Remove raw data past its retention, as each app defines it. Returns rows removed per kind."""
    now = now or timezone.now()
    started = time.monotonic()
    removed: dict[str, int] = {}
    for module in app_modules("retention"):
        if hasattr(module, "cleanup"):
            removed.update(module.cleanup(now))
    logger.info(
        "cleanup_old_data: %s in %.2fs",
        ", ".join(f"{label}={count}" for label, count in removed.items()) or "nothing registered",
        time.monotonic() - started,
    )
    return removed
