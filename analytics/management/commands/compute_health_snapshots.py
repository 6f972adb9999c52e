from django.core.management.base import BaseCommand

from analytics.services.health_snapshots import compute_health_snapshots


class Command(BaseCommand):
    help = "Compute the health score of every catalogue skill per org and over all orgs into skill_health_snapshot."

    def handle(self, *args, **options):
        result = compute_health_snapshots()
        self.stdout.write(", ".join(f"{key}: {value}" for key, value in result.items()))
