import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analytics.platform.data_export import FORMATS, ExportError, export_rows, export_streams
from analytics.platform.windows import Window, WindowError


class Command(BaseCommand):
    help = "Export raw records of a window as CSV or JSON lines, streamed. See docs/backup.md."

    def add_arguments(self, parser):
        parser.add_argument("--what", required=True, help=f"What to export: {', '.join(sorted(export_streams()))}.")
        parser.add_argument("--format", dest="export_format", default="csv",
                            help=f"{' or '.join(FORMATS)} (default csv).")
        parser.add_argument("--days", help="The last N days (default: the last 24 hours).")
        parser.add_argument("--start", help="ISO-8601 start (inclusive); a naive time is UTC.")
        parser.add_argument("--end", help="ISO-8601 end (exclusive; default now).")
        parser.add_argument("--org", help="Only this org's records (its slug). Default: every org.")
        parser.add_argument("--output", default="-", help="A file to write, or - for stdout (default).")

    def handle(self, *args, what, export_format, days, start, end, org, output, **options):
        try:
            window = Window.resolve(days=days, start=start, end=end)
        except WindowError as error:
            raise CommandError(f"--{error.field}: {error.message}") from None
        try:
            if output == "-":
                count = export_rows(what, export_format, window, org, self.stdout)
            else:
                count = self._to_file(Path(output).expanduser(), what, export_format, window, org)
        except ExportError as error:
            raise CommandError(f"--{error.field}: {error.message}") from None
        # The count goes to stderr, so that stdout holds the data alone.
        self.stderr.write(f"{count} {what} exported to {'stdout' if output == '-' else output}")

    def _to_file(self, path: Path, what, export_format, window, org) -> int:
        """Written beside, then renamed: a failed export leaves no half file under the asked name."""
        if not path.parent.is_dir():
            raise CommandError(f"--output: {path.parent} is not a directory")
        partial = path.with_name(path.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as file:
                count = export_rows(what, export_format, window, org, file)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return count
