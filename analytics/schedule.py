from analytics.services.platform import PeriodicJob

PERIODIC_JOBS = [
    PeriodicJob(
        name="cleanup old data",
        task="analytics.cleanup_old_data",
        crontab={"minute": "17", "hour": "3"},
        description="Remove raw events older than ANALYTICS_DB_RETENTION_DAYS (rollups stay).",
    ),
]
