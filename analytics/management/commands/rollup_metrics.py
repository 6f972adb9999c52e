from django.core.management.base import BaseCommand

from analytics.services.rollups import rollup_metrics


class Command(BaseCommand):
    help = "Build the metric rollups that closed since the last run and rebuild dirty buckets (idempotent)."

    def handle(self, *args, **options):
        result = rollup_metrics()
        self.stdout.write(", ".join(f"{key}: {value}" for key, value in result.items()))
