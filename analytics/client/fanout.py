"""A comma-separated ANALYTICS_BACKEND: every write goes to each backend, reads to the first store."""

from __future__ import annotations

from analytics.client.base import AnalyticsClient


class FanoutClient(AnalyticsClient):
    def __init__(self, backends: list[AnalyticsClient]):
        self.backends = backends
        self.name = ",".join(backend.name for backend in backends)

    def _each(self, method: str, *args) -> None:
        # Items are validated once before this; one backend failing must not keep the others from recording.
        errors = []
        for backend in self.backends:
            try:
                getattr(backend, method)(*args)
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def _record_execution(self, org_slug, item):
        self._each("_record_execution", org_slug, item)

    def _record_rating(self, org_slug, item):
        self._each("_record_rating", org_slug, item)

    def _record_install(self, org_slug, item):
        self._each("_record_install", org_slug, item)

    def _record_health_score(self, org_slug, skill_id, score):
        self._each("_record_health_score", org_slug, skill_id, score)

    def _reader(self, method: str) -> AnalyticsClient:
        for backend in self.backends:
            if backend.can_read:
                return backend
        raise self._unsupported(method)

    def get_skill_usage(self, skill_id=None, org_id=None, **window):
        return self._reader("get_skill_usage").get_skill_usage(skill_id, org_id, **window)

    def compute_health_score(self, skill_id, org_id=None):
        return self._reader("compute_health_score").compute_health_score(skill_id, org_id)

    def get_leaderboard(self, type="usage", limit=10, org_id=None, **window):
        return self._reader("get_leaderboard").get_leaderboard(type, limit, org_id, **window)

    def health_check(self) -> dict:
        checks = [backend.health_check() for backend in self.backends]
        return {"backend": self.name, "healthy": all(check["healthy"] for check in checks),
                "detail": "; ".join(f"{check['backend']}: {check['detail']}" for check in checks),
                "backends": checks}

    def get_config_summary(self) -> dict:
        return {**super().get_config_summary(), "backends": [backend.name for backend in self.backends]}

    def push(self) -> bool:
        return all([backend.push() for backend in self.backends])

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
