from django.core.management.base import BaseCommand

from analytics.platform.collectors import cleanup_old_data


class Command(BaseCommand):
    help = "Remove raw data older than its retention period, for every app."

    def handle(self, *args, **options):
        removed = cleanup_old_data()
        for label, count in removed.items():
            self.stdout.write(f"{label}: {count} removed")
