from django.core.management.base import BaseCommand, CommandError

from monitoring.models import Service
from monitoring.services import runner


class Command(BaseCommand):
    help = "Run the due health checks once, the named services' checks now, or due checks in a loop."

    def add_arguments(self, parser):
        parser.add_argument("--service", action="append", default=[], metavar="NAME",
                            help="Check this service now, due or not (repeatable).")
        parser.add_argument("--loop", action="store_true", help="Keep running due checks until interrupted.")
        parser.add_argument("--tick", type=float, default=5.0, help="Seconds between rounds with --loop.")

    def handle(self, *args, service, loop, tick, **options):
        if service and loop:
            raise CommandError("--service and --loop do not go together.")
        if loop:
            runner.run_forever(tick_seconds=tick)
            return
        if service:
            try:
                results = runner.run_named_checks(service)
            except Service.DoesNotExist as error:
                raise CommandError(str(error)) from None
            for result in results:
                detail = f" ({result.error})" if result.error else ""
                self.stdout.write(f"{result.service.name}: {result.status} in {result.response_time_ms:.0f} ms{detail}")
            return
        summary = runner.run_due_checks()
        self.stdout.write("{checked} checked, {failed} failed, {marked_unknown} now unknown".format(**summary))
