from datetime import UTC, datetime, timedelta

from monitoring.models import HealthCheck, Service

T0 = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)


def make_service(name="svc", **fields) -> Service:
    defaults = {"check_kind": Service.CheckKind.CUSTOM, "target": "tests.monitoring.checkfuncs.ok",
                "interval_seconds": 60, "timeout_seconds": 2}
    return Service.objects.create(name=name, **{**defaults, **fields})


def history(service, rows, start=T0):
    """rows: (seconds after start, status, response_time_ms or None for a failed check)."""
    HealthCheck.objects.bulk_create(
        HealthCheck(service=service, checked_at=start + timedelta(seconds=offset), status=status,
                    response_time_ms=response, consecutive_failures=0 if response is not None else 1,
                    error="" if response is not None else "failed")
        for offset, status, response in rows
    )
