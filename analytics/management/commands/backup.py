from django.core.management.base import BaseCommand, CommandError

from analytics.platform.backup import BackupError, backup, prune_backups


class Command(BaseCommand):
    help = ("Write a consistent backup of the database (SQLite: online backup API; PostgreSQL: pg_dump) "
            "and print its path. See docs/backup.md.")

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", default=None,
                            help="A new file, or a directory for a dated file. Default: a dated file in BACKUP_DIR.")
        parser.add_argument("--keep", type=int, default=None,
                            help="Afterwards, keep only the newest N dated backups in that directory.")

    def handle(self, *args, path, keep, **options):
        if keep is not None and keep < 1:
            raise CommandError(f"--keep: must be at least 1, got {keep}")
        try:
            result = backup(path)
            removed = prune_backups(result.path.parent, keep) if keep is not None else []
        except BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(str(result.path))
        if removed:
            self.stderr.write(f"{len(removed)} older backups removed")
