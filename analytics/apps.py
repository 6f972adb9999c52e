from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from analytics.platform import openapi  # noqa: F401  (registers the OpenAPI auth extension)
        from analytics.platform.collectors import sync_periodic_tasks_after_migrate

        post_migrate.connect(sync_periodic_tasks_after_migrate, dispatch_uid="analytics.sync_periodic_tasks")
