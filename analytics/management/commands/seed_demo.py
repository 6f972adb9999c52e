from django.core.management.base import BaseCommand

from analytics.platform.collectors import seed_demo


class Command(BaseCommand):
    help = "Load demo data from every app's demo.py (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="How many days of history (default 30).")

    def handle(self, *args, days, **options):
        if not 1 <= days <= 400:
            from django.core.management.base import CommandError

            raise CommandError("--days must be between 1 and 400.")
        timings = seed_demo(days=days, log=self.stderr.write)
        summary = ", ".join(f"{name.split('.')[0]} {seconds}s" for name, seconds in timings.items())
        self.stderr.write(f"seed_demo: {days} days ({summary})")
