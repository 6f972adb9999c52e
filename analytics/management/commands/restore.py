from django.core.management.base import BaseCommand, CommandError

from analytics.platform.backup import BackupError, restore


class Command(BaseCommand):
    help = ("Replace the whole database with a backup made by `manage.py backup`. Stop the web server, "
            "workers and beat first. See docs/backup.md.")

    def add_arguments(self, parser):
        parser.add_argument("path", help="The backup file.")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive",
                            help="Do not ask for confirmation.")

    def handle(self, *args, path, interactive, **options):
        if interactive:
            answer = input(f"This replaces every row of the database with the backup {path}. Type 'yes' to go on: ")
            if answer.strip() != "yes":
                raise CommandError("restore cancelled")
        try:
            result = restore(path)
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"restored {result.vendor} database from {result.path} in {result.seconds:.2f}s")
