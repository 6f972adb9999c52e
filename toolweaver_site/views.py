"""Process probes for load balancers and orchestrators."""

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from kombu import Connection


def healthz(request):
    """The process is alive and serving."""
    return JsonResponse({"status": "ok"})


# The embedded brokers live in this machine's files or memory: there is no server to be unreachable.
EMBEDDED_BROKERS = ("filesystem://", "memory://")
BROKER_TIMEOUT_SECONDS = 2  # a probe must answer before the load balancer's own timeout


def broker_state() -> str | None:
    """``"ok"`` or ``"unreachable"`` for a broker server (CELERY_BROKER_URL: Redis, RabbitMQ); None for the
    embedded filesystem broker of ``make run``, which nothing needs to reach."""
    if settings.CELERY_BROKER_URL.startswith(EMBEDDED_BROKERS):
        return None
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception:  # refused, timed out, refused our password: the scheduled jobs cannot be sent
        return "unreachable"
    return "ok"


def readyz(request):
    """The database is reachable and every migration is applied (else 503).

    With a broker server configured, the answer also says whether it is reachable. An unreachable broker is
    ``"status": "degraded"`` with 200, not 503: the API and the admin serve without it (only the scheduled
    jobs wait), so taking every web server out of the load balancer would turn a jobs outage into a full one.
    """
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:  # any failure to reach the database means "not ready"
        return JsonResponse({"status": "unavailable", "database": type(error).__name__}, status=503)
    if pending:
        return JsonResponse({"status": "unavailable", "pending_migrations": len(pending)}, status=503)
    broker = broker_state()
    if broker is None:
        return JsonResponse({"status": "ok"})
    return JsonResponse({"status": "ok" if broker == "ok" else "degraded", "broker": broker})
