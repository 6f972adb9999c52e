"""Skill versions compared: which version of a skill performs best (seed 002), from the executions themselves.

    compare_versions(skill_id, window, *, org=ALL_ORGS) -> SkillVersions | None   (GET skills/{id}/versions)
    newest_version_regression(skill_id, window, *, org=ALL_ORGS) -> float | None
    newest_version_regressions(window, *, org=ALL_ORGS, skill_ids=None) -> {skill_id: float | None}
    two_proportion_p_value(successes_a, n_a, successes_b, n_b) -> float
    mann_whitney(a, b) -> RankTest

Every version seen in the window (ordered by its first execution in the window; ``""`` is "unversioned")
gets its counts, success rate and exact latency percentiles, and — from the second on — a comparison with
the version seen first before it: a two-proportion z-test for the success rate and a Mann-Whitney U test
for latency, both two-sided with the normal approximation. A verdict is "better" or "worse" only when
p < ``SIGNIFICANCE_LEVEL`` and both versions have at least ``MIN_SAMPLE`` executions.

The figures are read from ``skill_usage``, not from the metrics query layer: the skill series are not tagged
with the version. Counts come from one ``GROUP BY skill_version`` query; latencies from the most recent
``LATENCY_SAMPLE_CAP`` executions of each version (newest first, ties by id, so the sample is deterministic),
so that months of data stay fast. Counts and success rates are never sampled.

Ratings carry no version, so there is no rating per version: the skill's rating is in ``GET skills/{id}``.
See docs/skill-versions.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np
from django.db.models import Count, Max, Min, Q
from pydantic import Field

from analytics.models import SkillExecution
from analytics.platform.contracts import ResponseContract
from analytics.platform.scope import ALL_ORGS, Scope, ScopeLike, as_scope
from analytics.platform.windows import Window
from analytics.services.percentiles import percentiles

# A difference is significant when its two-sided p-value is below this level.
SIGNIFICANCE_LEVEL = 0.01
# Fewer executions than this in either version: "not enough data" (the normal approximations need many).
MIN_SAMPLE = 30
# The latencies of each version are the most recent this many executions in the window.
LATENCY_SAMPLE_CAP = 50_000


# An enum rather than a Literal: the schema then has one component for it, not one enum per field.
class Verdict(StrEnum):
    """How this version compares with the previous one on one aspect."""

    BETTER = "better"
    WORSE = "worse"
    NO_SIGNIFICANT_DIFFERENCE = "no significant difference"
    NOT_ENOUGH_DATA = "not enough data"


# --- The response ---------------------------------------------------------------------------------------


class Verdicts(ResponseContract):
    success_rate: Verdict
    latency: Verdict


class VersionChange(ResponseContract):
    """This version against the previous one (the one first seen before it in the window)."""

    previous_version: str
    success_rate_delta: float = Field(description="This version's success rate minus the previous one's.")
    p50_latency_delta_ms: float | None = Field(description="This version's p50 latency minus the previous one's.")
    p95_latency_delta_ms: float | None = Field(description="This version's p95 latency minus the previous one's.")
    success_rate_p_value: float | None = Field(
        description="Two-proportion z-test (pooled), two-sided. Null when either version has fewer than "
                    f"{MIN_SAMPLE} executions.")
    latency_p_value: float | None = Field(
        description="Mann-Whitney U test of the latencies, two-sided, normal approximation with tie and "
                    f"continuity correction. Null when either version has fewer than {MIN_SAMPLE} executions.")
    latency_prob_slower: float | None = Field(
        description="The chance that an execution of this version is slower than one of the previous (ties "
                    "count half): U / (n1 × n2). Above 0.5: this version tends to be slower.")
    verdict: Verdicts = Field(description=f'"better" or "worse" only when p < {SIGNIFICANCE_LEVEL} and both '
                                          f"versions have at least {MIN_SAMPLE} executions.")


class VersionFigures(ResponseContract):
    skill_version: str = Field(description='The version; "" for executions recorded without one.')
    executions: int
    success_count: int
    success_rate: float = Field(description="A fraction 0-1, over every execution in the window (not sampled).")
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    latency_sample_size: int = Field(description="How many executions the latency figures are computed from.")
    sampled: bool = Field(description=f"Whether the latencies are the most recent {LATENCY_SAMPLE_CAP:,} "
                                      "executions only.")
    first_seen: datetime = Field(description="The version's first execution in the window.")
    last_seen: datetime = Field(description="The version's last execution in the window.")
    change: VersionChange | None = Field(description="Against the previous version; null for the first one.")


class SkillVersions(ResponseContract):
    """The body of ``GET skills/{skill_id}/versions``: each version seen in the window, in the order first seen.

    Ratings carry no version, so none is given per version; the skill's rating is in ``GET skills/{skill_id}``.
    """

    skill_id: str
    start: datetime
    end: datetime
    significance_level: float = Field(description="A difference is significant when p is below it.")
    min_sample: int = Field(description="Executions each version needs for a verdict other than "
                                        '"not enough data".')
    latency_sample_cap: int = Field(description="Latencies are read from at most this many most recent "
                                                "executions per version.")
    sampled: bool = Field(description="Whether any version's latencies are a sample.")
    versions: list[VersionFigures]


# --- The tests ------------------------------------------------------------------------------------------


def _two_sided(z: float) -> float:
    """P(|Z| ≥ |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2))


def two_proportion_p_value(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test; 1.0 when both rates are 0 or both 1."""
    pooled = (successes_a + successes_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return 1.0
    return _two_sided((successes_b / n_b - successes_a / n_a) / math.sqrt(variance))


@dataclass(frozen=True)
class RankTest:
    u_b: float  # the U statistic of ``b``: pairs (x of a, y of b) with y > x, ties counting half
    prob_greater: float  # u_b / (n_a n_b): the chance that a value of b exceeds one of a
    p_value: float  # two-sided


def mann_whitney(a, b) -> RankTest:
    """Mann-Whitney U test of two non-empty samples: two-sided, normal approximation with tie correction and
    continuity correction (what ``scipy.stats.mannwhitneyu(a, b, method="asymptotic")`` computes)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n_a, n_b = a.size, b.size
    n = n_a + n_b
    _, inverse, counts = np.unique(np.concatenate([a, b]), return_inverse=True, return_counts=True)
    # Tied values share the average of their ranks: a run of c values ending at rank e has rank e - (c - 1) / 2.
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2)[inverse.reshape(-1)]
    u_b = float(ranks[n_a:].sum()) - n_b * (n_b + 1) / 2
    mean = n_a * n_b / 2
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    variance = n_a * n_b / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:  # every value equal
        p_value = 1.0
    else:
        p_value = min(1.0, _two_sided(max(abs(u_b - mean) - 0.5, 0.0) / math.sqrt(variance)))
    return RankTest(u_b=u_b, prob_greater=u_b / (n_a * n_b), p_value=p_value)


def _verdict(p_value: float | None, worse: bool) -> Verdict:
    if p_value is None:
        return Verdict.NOT_ENOUGH_DATA
    if p_value >= SIGNIFICANCE_LEVEL:
        return Verdict.NO_SIGNIFICANT_DIFFERENCE
    return Verdict.WORSE if worse else Verdict.BETTER


# --- Reading --------------------------------------------------------------------------------------------


@dataclass
class _Version:
    skill_version: str
    executions: int
    success_count: int
    first_seen: datetime
    last_seen: datetime
    # Read only for the versions compared (_load):
    latencies: np.ndarray = field(default_factory=lambda: np.empty(0))
    p50: float | None = None
    p95: float | None = None

    @property
    def success_rate(self) -> float:
        return self.success_count / self.executions


def _in_window(window: Window, scope: Scope):
    return scope.filter(SkillExecution.objects.filter(timestamp__gte=window.start, timestamp__lte=window.end))


def _versions(window: Window, scope: Scope, skill_ids: list[str] | None) -> dict[str, list[_Version]]:
    """Per skill with executions in the window: its versions, in the order first seen. One query."""
    rows = _in_window(window, scope)
    if skill_ids is not None:
        rows = rows.filter(skill_id__in=skill_ids)
    grouped = (rows.values("skill_id", "skill_version").order_by()
               .annotate(executions=Count("id"), successes=Count("id", filter=Q(success=True)),
                         first_seen=Min("timestamp"), last_seen=Max("timestamp")))
    found: dict[str, list[_Version]] = {}
    for row in grouped:
        found.setdefault(row["skill_id"], []).append(_Version(
            row["skill_version"], row["executions"], row["successes"], row["first_seen"], row["last_seen"]))
    for versions in found.values():
        versions.sort(key=lambda version: (version.first_seen, version.skill_version))
    return found


def _load(skill_id: str, versions: list[_Version], window: Window, scope: Scope) -> None:
    """Read the latencies of these versions: the most recent LATENCY_SAMPLE_CAP of each (one query each)."""
    for version in versions:
        rows = (_in_window(window, scope).filter(skill_id=skill_id, skill_version=version.skill_version)
                .order_by("-timestamp", "-id").values_list("latency_ms", flat=True)[:LATENCY_SAMPLE_CAP])
        version.latencies = np.fromiter(rows, dtype=np.float64)
        version.p50, version.p95 = percentiles(version.latencies, [0.5, 0.95])


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


def _change(previous: _Version, current: _Version) -> VersionChange:
    """``current`` against ``previous``; both loaded."""
    enough = min(previous.executions, current.executions) >= MIN_SAMPLE
    success_p = (two_proportion_p_value(previous.success_count, previous.executions,
                                        current.success_count, current.executions) if enough else None)
    # Both have latencies unless their rows were deleted between the two queries (retention).
    has_latencies = previous.latencies.size > 0 and current.latencies.size > 0
    rank = mann_whitney(previous.latencies, current.latencies) if has_latencies else None
    latency_p = rank.p_value if rank is not None and enough else None
    return VersionChange(
        previous_version=previous.skill_version,
        success_rate_delta=current.success_rate - previous.success_rate,
        p50_latency_delta_ms=_delta(current.p50, previous.p50),
        p95_latency_delta_ms=_delta(current.p95, previous.p95),
        success_rate_p_value=success_p,
        latency_p_value=latency_p,
        latency_prob_slower=rank.prob_greater if rank is not None else None,
        verdict=Verdicts(
            success_rate=_verdict(success_p, worse=current.success_rate < previous.success_rate),
            latency=_verdict(latency_p, worse=rank is not None and rank.prob_greater > 0.5),
        ),
    )


def compare_versions(skill_id: str, window: Window, *, org: ScopeLike = ALL_ORGS) -> SkillVersions | None:
    """Each version of the skill seen in the window, with its change against the previous one.

    None when the skill has no executions at all (in the org); an empty list when none are in the window.
    """
    scope = as_scope(org)
    versions = _versions(window, scope, [skill_id]).get(skill_id, [])
    if not versions and not scope.filter(SkillExecution.objects.filter(skill_id=skill_id)).exists():
        return None
    _load(skill_id, versions, window, scope)
    figures = [
        VersionFigures(
            skill_version=version.skill_version, executions=version.executions,
            success_count=version.success_count, success_rate=version.success_rate,
            p50_latency_ms=version.p50, p95_latency_ms=version.p95, latency_sample_size=int(version.latencies.size),
            sampled=version.executions > LATENCY_SAMPLE_CAP, first_seen=version.first_seen,
            last_seen=version.last_seen, change=_change(versions[index - 1], version) if index else None,
        )
        for index, version in enumerate(versions)
    ]
    return SkillVersions(
        skill_id=skill_id, start=window.start, end=window.end, significance_level=SIGNIFICANCE_LEVEL,
        min_sample=MIN_SAMPLE, latency_sample_cap=LATENCY_SAMPLE_CAP,
        sampled=any(version.sampled for version in figures), versions=figures,
    )


def newest_version_regressions(window: Window, *, org: ScopeLike = ALL_ORGS,
                               skill_ids: list[str] | None = None) -> dict[str, float | None]:
    """Per skill with executions in the window (or the given ones among them): 1.0 when its newest version
    (the one first seen last) is significantly worse than the previous one on success rate or latency, 0.0
    when not, None when it has fewer than two versions in the window. The alert source
    ``skill.version_regression``."""
    scope = as_scope(org)
    found: dict[str, float | None] = {}
    for skill_id, versions in _versions(window, scope, skill_ids).items():
        if len(versions) < 2:
            found[skill_id] = None
            continue
        previous, newest = versions[-2:]
        _load(skill_id, [previous, newest], window, scope)
        change = _change(previous, newest)
        found[skill_id] = 1.0 if Verdict.WORSE in (change.verdict.success_rate, change.verdict.latency) else 0.0
    return found


def newest_version_regression(skill_id: str, window: Window, *, org: ScopeLike = ALL_ORGS) -> float | None:
    """1.0 when the skill's newest version is significantly worse than the previous one, 0.0 when not, None
    without two versions in the window."""
    return newest_version_regressions(window, org=org, skill_ids=[skill_id]).get(skill_id)
