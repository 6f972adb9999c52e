"""Skills and what happens to them: executions, ratings, installs and explicit health scores.

The catalogue is global, keyed by the string ``skill_id`` the orchestrator uses;
everything recorded about a skill belongs to an org. Foreign keys to a skill use
``to_field="skill_id"`` with ``db_column="skill_id"``, so the tables hold the
string id itself and seed 001's SQL (``SELECT skill_id, COUNT(*) FROM skill_usage
GROUP BY skill_id``) reads naturally in ``sqlite3``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.utils import timezone

from analytics.metric_families import LATENCY_BUCKETS_MS
from analytics.platform.tenancy import Organization

SKILL_ID_MAX_LENGTH = 200
# Path words of the skills API (API.md, Skills): a skill with one of these ids could not be addressed.
RESERVED_SKILL_IDS = frozenset({"executions", "ratings", "installs", "leaderboard", "adoption", "recommendations"})
# Each execution is also an event of these series of the metrics query layer, tagged skill_id and success.
LATENCY_METRIC = "skill.latency_ms"
EXECUTIONS_METRIC = "skill.executions"
# Ratings are 1 to 5 stars; the Bayesian priors of the rating board and of the health score assume the middle.
NEUTRAL_RATING = 3.0
UPSERT_CHUNK = 1000  # rows of one INSERT … ON CONFLICT (at most 5 parameters each)


class Skill(models.Model):
    skill_id = models.CharField(max_length=SKILL_ID_MAX_LENGTH, unique=True)
    name = models.CharField(max_length=200, blank=True)
    version = models.CharField(max_length=64, blank=True, help_text="The newest version seen in an execution.")
    deprecated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_recorded_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Time of the newest execution, rating or install."
    )

    class Meta:
        ordering = ["skill_id"]

    def __str__(self) -> str:
        return self.skill_id

    @staticmethod
    def catalogue_ids() -> list[str]:
        """The skill_ids of the catalogue as adoption and health count it: the skills not deprecated, in order."""
        return list(Skill.objects.filter(deprecated=False).order_by("skill_id").values_list("skill_id", flat=True))


def _skill_key() -> models.ForeignKey:
    # No index of its own: every table has a composite index that starts with the skill.
    return models.ForeignKey(Skill, to_field="skill_id", db_column="skill_id", on_delete=models.CASCADE,
                             related_name="+", db_index=False)


def _event_id_unique(name: str) -> models.UniqueConstraint:
    """A client's event_id is stored once per org (API.md, Idempotency); each family has its own."""
    return models.UniqueConstraint(
        fields=["org", "event_id"], condition=models.Q(event_id__isnull=False), name=name
    )


class SkillExecution(models.Model):
    """One execution of a skill: the ``skill_usage`` table of seed 001 (one row per use)."""

    skill = _skill_key()
    # Indexed by skill_usage_org_skill, which starts with the org.
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    user_id = models.CharField(max_length=200, null=True, blank=True)
    success = models.BooleanField()
    latency_ms = models.FloatField()
    error_type = models.CharField(max_length=200, blank=True)
    skill_version = models.CharField(max_length=64, blank=True)
    timestamp = models.DateTimeField()
    event_id = models.CharField(max_length=128, null=True, blank=True)

    class Meta:
        db_table = "skill_usage"
        indexes = [
            models.Index(fields=["timestamp"], name="skill_usage_timestamp"),
            models.Index(fields=["skill", "timestamp"], name="skill_usage_skill_id"),
            models.Index(fields=["org", "skill", "timestamp"], name="skill_usage_org_skill"),
            # Who used what: a user's skills (recommendations) and the follow-up of a recommendation.
            models.Index(fields=["org", "user_id", "skill", "timestamp"], name="skill_usage_org_user"),
        ]
        constraints = [_event_id_unique("skill_usage_event_dedup")]

    def __str__(self) -> str:
        outcome = "ok" if self.success else "failed"
        return f"{self.skill_id} {outcome} {self.latency_ms:g} ms at {self.timestamp:%Y-%m-%d %H:%M:%S}"


class SkillRating(models.Model):
    """A rating of 1-5. A user's newest rating (by time) is current; it supersedes their older ones.

    Superseded ratings are kept (``replaced_at`` set) so that an event_id stays
    known and a retried request is still recognised as a duplicate.
    """

    skill = _skill_key()
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user_id = models.CharField(max_length=200, null=True, blank=True, help_text="Empty: an anonymous rating.")
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    rated_at = models.DateTimeField()
    replaced_at = models.DateTimeField(null=True, blank=True)
    event_id = models.CharField(max_length=128, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["skill", "org"], name="skill_rating_skill_org")]
        constraints = [
            _event_id_unique("skill_rating_event_dedup"),
            models.UniqueConstraint(
                fields=["org", "skill", "user_id"],
                condition=models.Q(replaced_at__isnull=True, user_id__isnull=False),
                name="skill_rating_one_current_per_user",
            ),
            models.CheckConstraint(condition=models.Q(rating__gte=1, rating__lte=5), name="skill_rating_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.skill_id} rated {self.rating} by {self.user_id or 'anonymous'}"


class SkillInstall(models.Model):
    skill = _skill_key()
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user_id = models.CharField(max_length=200, null=True, blank=True)
    installed_at = models.DateTimeField()
    event_id = models.CharField(max_length=128, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["skill", "org"], name="skill_install_skill_org")]
        constraints = [_event_id_unique("skill_install_event_dedup")]

    def __str__(self) -> str:
        return f"{self.skill_id} installed by {self.user_id or 'anonymous'}"


class SkillHealthScore(models.Model):
    """A health score set explicitly (``update_health_score``, the admin). See docs/health-score.md."""

    skill = _skill_key()
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(100)])
    source = models.CharField(max_length=100, default="manual", help_text="Who set it: client, admin, …")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["skill", "org", "-recorded_at"], name="skill_health_latest")]
        constraints = [
            models.CheckConstraint(condition=models.Q(score__gte=0, score__lte=100), name="skill_health_0_to_100"),
        ]

    def __str__(self) -> str:
        return f"{self.skill_id}: {self.score:g} ({self.source})"


class SkillHealthSnapshot(models.Model):
    """A skill's computed health score as the scheduled job last computed it, per org and over all orgs: what
    the dashboards read (docs/health-score.md, Snapshots). Explicit scores are applied when it is read."""

    # NULL: over all orgs together (staff); no snapshot is kept for the platform scope alone.
    org = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    skill = _skill_key()
    computed = models.FloatField(null=True, blank=True, help_text="Empty: no executions in the recent week.")
    components = models.JSONField(default=dict, blank=True, help_text="The figures behind the score.")
    as_of = models.DateTimeField(help_text="The moment the score describes.")

    class Meta:
        db_table = "skill_health_snapshot"
        constraints = [
            # One row per skill and scope: two jobs storing at once collide instead of doubling it.
            models.UniqueConstraint(fields=["skill", "org"], condition=models.Q(org__isnull=False),
                                    name="skill_health_snapshot_org"),
            models.UniqueConstraint(fields=["skill"], condition=models.Q(org__isnull=True),
                                    name="skill_health_snapshot_all_orgs"),
        ]

    def __str__(self) -> str:
        return f"{self.skill_id}: {self.computed} as of {self.as_of:%Y-%m-%d %H:%M} ({self.org or 'all orgs'})"


def latency_bucket(latency_ms: float) -> int:
    """The index of the histogram bucket ``latency_ms`` falls in (Prometheus' ``le``: bound included)."""
    return bisect_left(LATENCY_BUCKETS_MS, latency_ms)


class SkillExecutionTotals(models.Model):
    """All executions ever stored, per skill and org: the counters and histogram of /metrics.

    Kept up to date in the transaction that stores the executions (``add``), so that every web worker
    exposes the same values, and never lowered by retention, so that counters only go up.
    """

    skill = _skill_key()
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    executions = models.PositiveBigIntegerField(default=0)
    successes = models.PositiveBigIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0.0)
    # Executions per latency bucket of LATENCY_BUCKETS_MS, then above the last bound (not cumulative).
    latency_buckets = models.JSONField(default=list)

    class Meta:
        verbose_name_plural = "skill execution totals"
        constraints = [models.UniqueConstraint(fields=["org", "skill"], name="skill_totals_one_per_org_skill")]

    def __str__(self) -> str:
        return f"{self.skill_id} in {self.org_id}: {self.executions} executions"

    @staticmethod
    def empty_buckets() -> list[int]:
        return [0] * (len(LATENCY_BUCKETS_MS) + 1)

    @staticmethod
    def add(org: Organization, executions: Iterable) -> None:
        """Count freshly stored executions (items with skill_id, success, latency_ms) into the totals."""
        fresh: dict[str, SkillExecutionTotals] = {}
        for item in executions:
            totals = fresh.get(item.skill_id)
            if totals is None:
                totals = fresh[item.skill_id] = SkillExecutionTotals(
                    skill_id=item.skill_id, org=org, latency_buckets=SkillExecutionTotals.empty_buckets())
            totals.executions += 1
            totals.successes += bool(item.success)
            totals.latency_sum_ms += item.latency_ms
            totals.latency_buckets[latency_bucket(item.latency_ms)] += 1
        if not fresh:
            return
        rows = SkillExecutionTotals.objects
        rows.bulk_create([SkillExecutionTotals(skill_id=skill_id, org=org,
                                               latency_buckets=SkillExecutionTotals.empty_buckets())
                          for skill_id in fresh], ignore_conflicts=True)
        # Locked in a fixed order: concurrent batches of the same skills wait for each other, never deadlock.
        stored = list(rows.select_for_update().filter(org=org, skill_id__in=fresh).order_by("skill_id"))
        for row in stored:
            added = fresh[row.skill_id]
            row.executions += added.executions
            row.successes += added.successes
            row.latency_sum_ms += added.latency_sum_ms
            row.latency_buckets = [a + b for a, b in zip(row.latency_buckets, added.latency_buckets, strict=True)]
        rows.bulk_update(stored, ["executions", "successes", "latency_sum_ms", "latency_buckets"])


class SkillUsageDay(models.Model):
    """Who used which skill on which UTC day, and how often: skill_usage's per-user relation by day.

    The distinct counts of adoption (skills per user, active and engaged users) over weeks and months read
    these rows for the whole days of a window and ``skill_usage`` only for the part days at its edges.
    Kept up to date in the transaction that stores the executions (``add``); executions without a user_id
    have no row. Retention removes the days before its cutoff, as it removes their executions.
    """

    day = models.DateField()
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    user_id = models.CharField(max_length=200)
    skill = _skill_key()
    executions = models.PositiveIntegerField()

    class Meta:
        db_table = "skill_usage_day"
        constraints = [
            # Starts with the day: every read is a range of days, over one org or all of them.
            models.UniqueConstraint(fields=["day", "org", "user_id", "skill"], name="skill_usage_day_one_row"),
        ]

    def __str__(self) -> str:
        return f"{self.skill_id} used {self.executions}× by {self.user_id} on {self.day}"

    @staticmethod
    def add(org: Organization, executions: Iterable) -> None:
        """Count freshly stored executions (items with skill_id, user_id, timestamp) into their days."""
        counts: Counter[tuple] = Counter(
            (item.timestamp.astimezone(UTC).date(), item.user_id, item.skill_id)
            for item in executions if item.user_id is not None
        )
        _upsert(SkillUsageDay, ["day", "org_id", "user_id", "skill_id"], "executions",
                "{table}.executions + excluded.executions",
                [(day, org.pk, user_id, skill_id, count) for (day, user_id, skill_id), count in counts.items()])


class SkillUserDay(models.Model):
    """The UTC days each user executed skills, whatever the skills: who was active over a window
    (``analytics/services/adoption.py``, active users, weekly growth and engagement) in one row per (org, user,
    day) instead of one per skill too.

    Kept up to date in the transaction that stores the executions (``add``); executions without a user_id
    have no row. Retention removes the days before its cutoff, as it removes their executions.
    """

    day = models.DateField()
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    user_id = models.CharField(max_length=200)
    executions = models.PositiveIntegerField()

    class Meta:
        db_table = "skill_user_day"
        constraints = [
            models.UniqueConstraint(fields=["day", "org", "user_id"], name="skill_user_day_one_row"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} ran {self.executions} executions on {self.day}"

    @staticmethod
    def add(org: Organization, executions: Iterable) -> None:
        """Count freshly stored executions (items with user_id and timestamp) into their users' days."""
        counts: Counter[tuple] = Counter(
            (item.timestamp.astimezone(UTC).date(), item.user_id) for item in executions if item.user_id is not None
        )
        _upsert(SkillUserDay, ["day", "org_id", "user_id"], "executions", "{table}.executions + excluded.executions",
                [(day, org.pk, user_id, count) for (day, user_id), count in counts.items()])


class SkillUserLastUse(models.Model):
    """The last UTC day each user used each skill: who used what over a window that ends now, in one row per
    (org, user, skill) instead of one per day (``analytics/services/adoption.py``, ``_recent_pairs``).

    Kept up to date in the transaction that stores the executions (``add``); executions without a user_id
    have no row. Retention removes the rows whose last day is before its cutoff.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    user_id = models.CharField(max_length=200)
    skill = _skill_key()
    last_day = models.DateField()

    class Meta:
        db_table = "skill_user_last_use"
        constraints = [
            models.UniqueConstraint(fields=["skill", "org", "user_id"], name="skill_user_last_use_one_row"),
        ]

    def __str__(self) -> str:
        return f"{self.skill_id} last used by {self.user_id} on {self.last_day}"

    @staticmethod
    def add(org: Organization, executions: Iterable) -> None:
        """Move each (user, skill)'s last day to that of its newest freshly stored execution, if later."""
        last: dict[tuple, date] = {}
        for item in executions:
            if item.user_id is not None:
                key, day = (item.skill_id, item.user_id), item.timestamp.astimezone(UTC).date()
                last[key] = max(day, last.get(key, day))
        _upsert(SkillUserLastUse, ["skill_id", "org_id", "user_id"], "last_day",
                "CASE WHEN excluded.last_day > {table}.last_day THEN excluded.last_day ELSE {table}.last_day END",
                [(skill_id, org.pk, user_id, day) for (skill_id, user_id), day in last.items()])


def _upsert(model: type[models.Model], key: list[str], column: str, update: str, rows: list[tuple]) -> None:
    """INSERT (*key, column) rows; a row whose key exists gets ``update`` ({table} is the table) instead."""
    table = connection.ops.quote_name(model._meta.db_table)
    rows = sorted(rows)  # in key order, so that concurrent batches lock the rows they share in the same order
    placeholders = "(" + ", ".join(["%s"] * (len(key) + 1)) + ")"
    with connection.cursor() as cursor:
        for first in range(0, len(rows), UPSERT_CHUNK):
            chunk = rows[first:first + UPSERT_CHUNK]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(key)}, {column}) VALUES " + ", ".join([placeholders] * len(chunk))
                + f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {column} = {update.format(table=table)}",
                [value for row in chunk for value in row],
            )
