"""What every backend shares: the seed's method names, validation, org defaults, and reads refused."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from analytics.client import UnsupportedOperation
from analytics.client.config import client_config, config_summary
from analytics.platform.contracts import validate_one
from analytics.platform.tenancy import slug_validator
from analytics.services import skills


class AnalyticsClient:
    """Writes validate here and reach a backend through the ``_record_*`` hooks; reads need a store."""

    name = "base"
    can_read = False  # push-only backends keep nothing to read back

    # --- Writes (every backend) ------------------------------------------------------------

    def record_skill_usage(self, skill_id, user_id=None, org_id=None, success=True, latency_ms=0.0, *,
                           skill_version=None) -> None:
        self.record_skill_execution(skill_id, success, latency_ms, user_id=user_id, org_id=org_id,
                                    skill_version=skill_version)

    def record_skill_execution(self, skill_id, success, latency_ms, user_id=None, org_id=None, *,
                               skill_version=None) -> None:
        raw = {"skill_id": skill_id, "success": success, "latency_ms": latency_ms, "user_id": user_id,
               "skill_version": skill_version}
        item = _validated(skills.ExecutionItem, raw)
        self._record_execution(self._org_slug(org_id), item)

    def rate_skill(self, skill_id, rating, org_id=None, user_id=None) -> None:
        self.record_skill_rating(skill_id, rating, user_id=user_id, org_id=org_id)

    def record_skill_rating(self, skill_id, rating, user_id=None, org_id=None) -> None:
        item = _validated(skills.RatingItem, {"skill_id": skill_id, "rating": rating, "user_id": user_id})
        self._record_rating(self._org_slug(org_id), item)

    def record_skill_install(self, skill_id, user_id=None, org_id=None) -> None:
        item = _validated(skills.InstallItem, {"skill_id": skill_id, "user_id": user_id})
        self._record_install(self._org_slug(org_id), item)

    def update_health_score(self, skill_id, score, org_id=None) -> None:
        given = _validated(skills.HealthScoreItem, {"skill_id": skill_id, "score": score})
        self._record_health_score(self._org_slug(org_id), given.skill_id, given.score)

    # --- Reads (store backends only) -----------------------------------------------------------

    def get_skill_usage(self, skill_id=None, org_id=None, *, hours=None, days=None, start=None, end=None):
        raise self._unsupported("get_skill_usage")

    def compute_health_score(self, skill_id, org_id=None):
        raise self._unsupported("compute_health_score")

    def get_leaderboard(self, type="usage", limit=10, org_id=None, *, hours=None, days=None, start=None, end=None):
        raise self._unsupported("get_leaderboard")

    # --- Operations ------------------------------------------------------------------------------

    def health_check(self) -> dict:
        return {"backend": self.name, "healthy": True, "detail": ""}

    def get_config_summary(self) -> dict:
        return config_summary(self.name)

    def push(self) -> bool:
        """Flush what a push backend holds; nothing to do elsewhere."""
        return True

    def close(self) -> None:
        """Release what the backend holds (threads, connections); it records nothing after."""

    # --- For the backends ------------------------------------------------------------------------

    def _record_execution(self, org_slug: str, item: skills.ExecutionItem) -> None:
        raise NotImplementedError

    def _record_rating(self, org_slug: str, item: skills.RatingItem) -> None:
        raise NotImplementedError

    def _record_install(self, org_slug: str, item: skills.InstallItem) -> None:
        raise NotImplementedError

    def _record_health_score(self, org_slug: str, skill_id: str, score: float) -> None:
        raise NotImplementedError

    def _unsupported(self, method: str) -> UnsupportedOperation:
        return UnsupportedOperation(
            f"The {self.name} backend is push-only and keeps nothing to read: {method}() needs the sqlite or db "
            "backend."
        )

    @staticmethod
    def _org_slug(org_id) -> str:
        """The org an item is recorded for: ``org_id``, else ANALYTICS_DEFAULT_ORG."""
        slug = client_config().default_org if org_id in (None, "") else org_id
        if not isinstance(slug, str):
            raise ValueError("org_id: Must be a string (an organisation slug).")
        try:
            slug_validator(slug)
        except ValidationError as error:
            raise ValueError(f"org_id: {' '.join(error.messages)}") from None
        return slug

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _validated(item_model, raw: dict):
    """An item checked as the API checks it; a ContractError (a ValueError) names each bad field."""
    return validate_one(item_model, {key: value for key, value in raw.items() if value is not None})
