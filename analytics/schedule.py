from datetime import timedelta

from analytics.platform.collectors import PeriodicJob
from analytics.services.health_snapshots import SNAPSHOT_INTERVAL
from analytics.services.leaderboards import JOB_INTERVAL

PERIODIC_JOBS = [
    PeriodicJob(
        name="rollup metrics",
        task="analytics.rollup_metrics",
        every=timedelta(minutes=1),
        description="Build the minute, hour, day and week rollups that closed since the last run; rebuild dirty "
                    "ones.",
    ),
    PeriodicJob(
        name="cleanup old data",
        task="analytics.cleanup_old_data",
        crontab={"minute": "17", "hour": "3"},
        description="Remove raw events older than ANALYTICS_DB_RETENTION_DAYS (rollups stay).",
    ),
    PeriodicJob(
        name="compute leaderboards",
        task="analytics.compute_leaderboards",
        every=JOB_INTERVAL,
        description="Compute the skill leaderboards of every org and of all orgs into leaderboard_cache "
                    "(a board older than twice this interval is stale and computed on read).",
    ),
    PeriodicJob(
        name="compute health scores",
        task="analytics.compute_health_snapshots",
        every=SNAPSHOT_INTERVAL,
        description="Compute the health score of every catalogue skill per org and over all orgs into "
                    "skill_health_snapshot, for the dashboards (a snapshot older than twice this interval is "
                    "stale and computed on read).",
    ),
    PeriodicJob(
        name="track analytics",
        task="analytics.track_analytics",
        every=timedelta(minutes=5),
        description="Compute the user, agent and platform analytics of the periods that new or late events "
                    "marked dirty, and of the current hour and day.",
    ),
    PeriodicJob(
        name="back up database",
        task="analytics.backup_database",
        crontab={"minute": "41", "hour": "2"},
        description="Write a dated backup of the database to BACKUP_DIR and keep the newest BACKUP_KEEP "
                    "(docs/backup.md).",
    ),
]
