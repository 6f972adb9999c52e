from django.core.management.base import BaseCommand

from analytics.platform.collectors import sync_periodic_tasks


class Command(BaseCommand):
    help = "Create the periodic jobs each app declares in its schedule.py (runs after migrate too)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Also reset schedules edited in the admin.")

    def handle(self, *args, reset, **options):
        result = sync_periodic_tasks(reset=reset)
        self.stdout.write(f"periodic tasks: {result['created']} created, {result['updated']} updated")
