from django.core.management.base import BaseCommand, CommandError

from alerts.services.evaluation import evaluate_rules, run_forever


class Command(BaseCommand):
    help = "Evaluate every enabled alert rule once, or every --interval seconds with --loop."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep evaluating until interrupted.")
        parser.add_argument("--interval", type=float, default=60.0, help="Seconds between passes with --loop.")

    def handle(self, *args, loop, interval, **options):
        if interval <= 0:
            raise CommandError("--interval must be positive.")
        if loop:
            run_forever(interval_seconds=interval)
            return
        summary = evaluate_rules()
        self.stdout.write(
            "{rules} rules in {queries} queries: {moves} moves, {opened} opened, {resolved} resolved, "
            "{unsilenced} unsilenced, {errors} errors in {seconds:.2f}s".format(**summary.as_dict())
        )
