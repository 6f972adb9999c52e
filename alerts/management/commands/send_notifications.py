import time

from django.core.management.base import BaseCommand, CommandError

from alerts.notifications import outbox


class Command(BaseCommand):
    help = ("Plan the notifications incidents call for and send what is due, once, or every --interval seconds "
            "with --loop. Several may run at once: each row is claimed by one of them.")

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep sending until interrupted.")
        parser.add_argument("--interval", type=float, default=10.0, help="Seconds between passes with --loop.")

    def handle(self, *args, loop, interval, **options):
        if interval <= 0:
            raise CommandError("--interval must be positive.")
        while True:
            summary = outbox.run()
            self.stdout.write("{planned} planned, {sent} sent, {retried} to retry, {failed} failed".format(
                **summary.as_dict()))
            if not loop:
                return
            time.sleep(interval)
