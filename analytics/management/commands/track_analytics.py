from django.core.management.base import BaseCommand, CommandError

from analytics.models import Organization, PeriodType
from analytics.platform.windows import WindowError, parse_time
from analytics.services import activity_periods


class Command(BaseCommand):
    help = ("Compute the user, agent and platform analytics of every period of a type overlapping [--start, "
            "--end) (default: the current period), or with --dirty the periods that new or late events marked.")

    def add_arguments(self, parser):
        parser.add_argument("--period", choices=PeriodType.values, help="hour, day, ISO week or calendar month.")
        parser.add_argument("--start", help="ISO-8601 (naive = UTC); default: the current period's start.")
        parser.add_argument("--end", help="ISO-8601, exclusive; default: the end of the current period.")
        parser.add_argument("--org", help="Only this org's slug (default: every org with activity).")
        parser.add_argument("--dirty", action="store_true", help="Compute every period marked dirty, all orgs.")

    def handle(self, *args, period, start, end, org, dirty, **options):
        if dirty:
            if period or start or end or org:
                raise CommandError("--dirty computes every marked period: it takes no --period, --start, --end "
                                   "or --org.")
            summary = activity_periods.compute_dirty()
            self.stdout.write(f"dirty periods: {summary.line()}")
            return
        if not period:
            raise CommandError("Name the period type with --period hour|day|week|month (or pass --dirty).")
        organization = None
        if org is not None:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"--org: no organisation with slug {org!r}.")
        try:
            first, last = activity_periods.resolve_range(
                period, parse_time("start", start) if start else None, parse_time("end", end) if end else None)
        except (WindowError, activity_periods.TrackRangeError) as error:
            raise CommandError(f"--{error.field}: {error.message}") from None
        summary = activity_periods.compute_periods(period, first, last, org=organization)
        self.stdout.write(f"{period} periods from {first.isoformat()} to {last.isoformat()}: {summary.line()}")
