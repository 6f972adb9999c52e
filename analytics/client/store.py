"""The ``sqlite`` / ``db`` backend: the Django store (SQLite by default, PostgreSQL with DATABASE_URL).

Writes go through the same service functions as the API; reads ask the same
services as ``GET skills/{id}``. The in-process client has the store's full
rights, so reads without ``org_id`` cover all orgs (API.md, The Python client).
"""

from __future__ import annotations

import threading
from datetime import timedelta

from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from analytics.client import ensure_django
from analytics.client.base import AnalyticsClient
from analytics.models import Organization, Skill
from analytics.platform.scope import ALL_ORGS, Scope
from analytics.platform.windows import Window
from analytics.services import leaderboards, skills
from analytics.services.health_score import health_score

DEFAULT_READ_WINDOW = timedelta(days=30)

_schema_lock = threading.Lock()
_schema_ready = False


def _unapplied_migrations() -> list:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


def ensure_schema() -> None:
    """Create the tables on first use (seed 001's "Automatic Setup"): migrate if anything is unapplied."""
    global _schema_ready
    if _schema_ready:
        return
    with _schema_lock:
        if _schema_ready:
            return
        if _unapplied_migrations():
            try:
                call_command("migrate", verbosity=0, interactive=False)
            except Exception:
                # Another process starting at the same moment may have migrated first.
                if _unapplied_migrations():
                    raise
        _schema_ready = True


class StoreBackend(AnalyticsClient):
    can_read = True

    def __init__(self, name: str = "sqlite"):
        ensure_django()
        ensure_schema()
        self.name = name
        self._orgs: dict[str, Organization] = {}

    # --- Writes ---------------------------------------------------------------------------------

    def _org(self, slug: str) -> Organization:
        if slug not in self._orgs:
            self._orgs[slug] = Organization.get_or_create_by_slug(slug)
        return self._orgs[slug]

    def _record_execution(self, org_slug, item):
        skills.record_executions(self._org(org_slug), [item])

    def _record_rating(self, org_slug, item):
        skills.record_ratings(self._org(org_slug), [item])

    def _record_install(self, org_slug, item):
        skills.record_installs(self._org(org_slug), [item])

    def _record_health_score(self, org_slug, skill_id, score):
        skills.set_health_score(self._org(org_slug), skill_id, score, source="client")

    # --- Reads ----------------------------------------------------------------------------------

    @staticmethod
    def _read_scope(org_id) -> Scope | None:
        """``org_id`` None reads ALL_ORGS; a slug its org; None when no org has that slug (so no data)."""
        if org_id in (None, ""):
            return ALL_ORGS
        org = Organization.objects.filter(slug=org_id).first()
        return Scope.of(org) if org is not None else None

    def get_skill_usage(self, skill_id=None, org_id=None, *, hours=None, days=None, start=None, end=None):
        """The figures of ``GET skills/{id}`` (None without data), or a list of them for every skill."""
        window = Window.resolve(hours=hours, days=days, start=start, end=end, default=DEFAULT_READ_WINDOW)
        scope = self._read_scope(org_id)
        if skill_id is None:
            return [] if scope is None else [summary.render() for summary in skills.skill_summaries(window, org=scope)]
        summary = None if scope is None else skills.skill_summary(skill_id, window, org=scope)
        return summary.render() if summary is not None else None

    def compute_health_score(self, skill_id, org_id=None):
        """0-100, or None without data (docs/health-score.md)."""
        scope = self._read_scope(org_id)
        return None if scope is None else health_score(skill_id, org=scope).score

    def get_leaderboard(self, type="usage", limit=10, org_id=None, *, hours=None, days=None, start=None, end=None):
        """The board's rows, from leaderboard_cache (computed now when missing or stale; docs/leaderboards.md).

        A window (usage only) ranks the executions in it instead of the cached 30 days.
        """
        windowed = [name for name, value in (("hours", hours), ("days", days), ("start", start), ("end", end))
                    if value not in (None, "")]
        leaderboards.board_request(type, limit, windowed)  # a BoardRequestError (ValueError) names the field
        scope = self._read_scope(org_id)
        if scope is None:
            return []
        if windowed:
            window = Window.resolve(hours=hours, days=days, start=start, end=end, default=DEFAULT_READ_WINDOW)
            return [row.render() for row in leaderboards.usage_board(window, org=scope, limit=limit)]
        return [row.render() for row in leaderboards.get_board(type, org=scope, limit=limit).results]

    # --- Operations -----------------------------------------------------------------------------

    def health_check(self) -> dict:
        connection = connections[DEFAULT_DB_ALIAS]
        try:
            connection.ensure_connection()
            pending = _unapplied_migrations()
            skill_count = Skill.objects.count()
        except Exception as error:  # a health check reports, it does not raise
            return {"backend": self.name, "healthy": False, "detail": f"database unavailable: {type(error).__name__}"}
        where = connection.settings_dict["NAME"]
        if pending:
            return {"backend": self.name, "healthy": False,
                    "detail": f"{connection.vendor} database {where}: {len(pending)} unapplied migrations"}
        return {"backend": self.name, "healthy": True,
                "detail": f"{connection.vendor} database {where}: {skill_count} skills"}
