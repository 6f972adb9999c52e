"""The ``wandb`` backend: logs skill executions and evaluations to a Weights & Biases run.

wandb is an optional extra (``pip install 'toolweaver-analytics[wandb]'``), imported only when this backend is
created. Each client starts its own run — project WANDB_PROJECT, entity WANDB_ENTITY, name WANDB_RUN_NAME — and
``close()`` finishes it. wandb itself reads WANDB_MODE (online, offline, disabled) and WANDB_DIR.

Every write is one step of the run's history, keyed by skill:

    skill/<skill_id>/latency_ms, skill/<skill_id>/success (0 or 1), skill/<skill_id>/success_rate (running)
    skill/<skill_id>/rating, skill/<skill_id>/installs (running count), skill/<skill_id>/health_score
    eval/<skill_id>/<version>/<metric>                                  (log_evaluation)

The run's config names the orgs recorded for (``org_ids``) and the versions evaluated per skill
(``skill_versions``), so runs can be filtered and grouped by them. ``push()`` and ``close()`` log the
``evaluations`` table: one row per evaluation (org_id, skill_id, skill_version, then a column per metric).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from analytics.client.base import AnalyticsClient
from analytics.client.config import client_config
from analytics.platform.contracts import Name, validate_one
from analytics.services.skills import SKILL_ID_PATTERN, SkillId

INSTALL_HINT = "pip install 'toolweaver-analytics[wandb]'"

MetricName = Annotated[str, Field(min_length=1, max_length=64, pattern=SKILL_ID_PATTERN)]
MetricValue = Annotated[float, Field(strict=True, allow_inf_nan=False)]


@dataclass(frozen=True)
class EvaluationItem:
    skill_id: SkillId
    version: Annotated[str, Name(64)]
    metrics: Annotated[dict[MetricName, MetricValue], Field(min_length=1)]


def _import_wandb():
    try:
        import wandb
    except ImportError:
        raise ImportError(f"The wandb analytics backend needs the wandb package: {INSTALL_HINT}") from None
    return wandb


class WandbBackend(AnalyticsClient):
    name = "wandb"

    def __init__(self) -> None:
        self._wandb = _import_wandb()
        config = client_config()
        settings = self._wandb.Settings(api_key=config.wandb_api_key or None)
        try:
            # create_new: a second client gets its own run instead of finishing or sharing the first one's.
            self._run = self._wandb.init(
                project=config.wandb_project, entity=config.wandb_entity or None,
                name=config.wandb_run_name or None, reinit="create_new", settings=settings,
                config={"org_ids": [], "skill_versions": {}},
            )
        except self._wandb.errors.Error as error:
            raise ValueError(f"The wandb backend could not start a run: {error}") from error
        self._lock = threading.Lock()
        self._executions: Counter[str] = Counter()
        self._successes: Counter[str] = Counter()
        self._installs: Counter[str] = Counter()
        self._orgs: list[str] = []
        self._versions: dict[str, list[str]] = {}
        self._evaluations: list[dict] = []
        self._evaluations_logged = 0
        self._closed = False

    # --- Writes ---------------------------------------------------------------------------------

    def _record_execution(self, org_slug, item):
        skill = item.skill_id
        with self._lock:
            self._executions[skill] += 1
            self._successes[skill] += int(item.success)
            self._log(org_slug, {
                f"skill/{skill}/latency_ms": item.latency_ms,
                f"skill/{skill}/success": int(item.success),
                f"skill/{skill}/success_rate": self._successes[skill] / self._executions[skill],
            }, skill, item.skill_version)

    def _record_rating(self, org_slug, item):
        with self._lock:
            self._log(org_slug, {f"skill/{item.skill_id}/rating": item.rating})

    def _record_install(self, org_slug, item):
        with self._lock:
            self._installs[item.skill_id] += 1
            self._log(org_slug, {f"skill/{item.skill_id}/installs": self._installs[item.skill_id]})

    def _record_health_score(self, org_slug, skill_id, score):
        with self._lock:
            self._log(org_slug, {f"skill/{skill_id}/health_score": score})

    def log_evaluation(self, skill_id: str, version: str, metrics: dict, org_id: str | None = None) -> None:
        """Log an evaluation of one version of a skill: ``metrics`` maps names (no '/' or spaces) to numbers.

        One step ``eval/<skill_id>/<version>/<metric>`` per call; the version joins the run's
        ``skill_versions`` config and the row joins the ``evaluations`` table.
        """
        item = validate_one(EvaluationItem, {"skill_id": skill_id, "version": version, "metrics": metrics})
        org_slug = self._org_slug(org_id)
        with self._lock:
            self._log(org_slug, {f"eval/{item.skill_id}/{item.version}/{name}": value
                                 for name, value in item.metrics.items()}, item.skill_id, item.version)
            self._evaluations.append({"org_id": org_slug, "skill_id": item.skill_id,
                                      "skill_version": item.version, **item.metrics})

    def _log(self, org_slug: str, values: dict, skill_id: str = "", version: str = "") -> None:
        """One step of the run; the config first learns a new org or skill version (called under the lock)."""
        if self._closed:
            raise RuntimeError("The wandb backend is closed: its run is finished and records nothing more.")
        changed: dict[str, object] = {}
        if org_slug not in self._orgs:
            self._orgs.append(org_slug)
            changed["org_ids"] = sorted(self._orgs)
        if version and version not in self._versions.setdefault(skill_id, []):
            self._versions[skill_id].append(version)
            changed["skill_versions"] = {skill: sorted(versions) for skill, versions in self._versions.items()}
        if changed:
            self._run.config.update(changed, allow_val_change=True)
        self._run.log(values)

    # --- Operations -----------------------------------------------------------------------------

    def push(self) -> bool:
        """Log the ``evaluations`` table when evaluations arrived since the last push (history streams itself)."""
        with self._lock:
            if self._closed:
                return False
            if len(self._evaluations) > self._evaluations_logged:
                self._run.log({"evaluations": self._evaluations_table()})
                self._evaluations_logged = len(self._evaluations)
            return True

    def _evaluations_table(self):
        metric_names = sorted({name for row in self._evaluations for name in row} - {"org_id", "skill_id",
                                                                                     "skill_version"})
        columns = ["org_id", "skill_id", "skill_version", *metric_names]
        return self._wandb.Table(columns=columns, data=[[row.get(column) for column in columns]
                                                        for row in self._evaluations])

    def health_check(self) -> dict:
        mode = self._run.settings.mode
        if self._closed:
            return {"backend": self.name, "healthy": False, "detail": f"run {self._run.id} finished ({mode})"}
        if mode == "disabled":
            return {"backend": self.name, "healthy": True, "detail": "WANDB_MODE=disabled: nothing is logged"}
        return {"backend": self.name, "healthy": True,
                "detail": f"run {self._run.id} live ({mode}), project {self._run.project}, in {self._run.dir}"}

    def close(self) -> None:
        if self._closed:
            return
        self.push()
        with self._lock:
            self._closed = True
        self._run.finish()
