"""Celery tasks: thin wrappers over service functions."""

from celery import shared_task

from analytics.platform import backup, collectors
from analytics.services import activity_periods, health_snapshots, leaderboards, partitions, rollups


@shared_task(name="analytics.cleanup_old_data")
def cleanup_old_data() -> dict[str, int]:
    return collectors.cleanup_old_data()


@shared_task(name="analytics.ping")
def ping(payload: str = "pong") -> str:
    """Round trip through the broker and a worker (used by readiness checks and tests)."""
    return payload


@shared_task(name="analytics.rollup_metrics")
def rollup_metrics() -> dict[str, int]:
    # The day partitions of the raw events ahead (PostgreSQL; one catalog query when none is missing).
    partitions.ensure_partitions()
    return rollups.rollup_metrics()


@shared_task(name="analytics.compute_leaderboards")
def compute_leaderboards() -> dict[str, int]:
    return leaderboards.compute_leaderboards()


@shared_task(name="analytics.compute_health_snapshots")
def compute_health_snapshots() -> dict[str, int]:
    return health_snapshots.compute_health_snapshots()


@shared_task(name="analytics.track_analytics")
def track_analytics() -> dict:
    return activity_periods.track_due().render()


@shared_task(name="analytics.backup_database")
def backup_database() -> dict:
    return backup.scheduled_backup()
