from django.core.management.base import BaseCommand, CommandError

from monitoring.otlp_push import OtlpPushError, push_aggregates


class Command(BaseCommand):
    help = "Push the server's metric families (those of /metrics) to the OTLP destination once."

    def handle(self, *args, **options):
        try:
            result = push_aggregates()
        except OtlpPushError as error:
            raise CommandError(f"push_otlp: {error}") from None
        self.stdout.write(f"pushed {result.metrics} metrics, {result.points} points to {result.endpoint} "
                          f"in {result.seconds:.2f}s")
