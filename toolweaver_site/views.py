"""Process probes for load balancers and orchestrators."""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse


def healthz(request):
    """The process is alive and serving."""
    return JsonResponse({"status": "ok"})


def readyz(request):
    """The database is reachable and every migration is applied."""
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:  # any failure to reach the database means "not ready"
        return JsonResponse({"status": "unavailable", "database": type(error).__name__}, status=503)
    if pending:
        return JsonResponse({"status": "unavailable", "pending_migrations": len(pending)}, status=503)
    return JsonResponse({"status": "ok"})
