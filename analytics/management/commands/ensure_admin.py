from django.core.management.base import BaseCommand

from analytics.platform.accounts import ensure_local_admin


class Command(BaseCommand):
    help = "Create (or repair) the local staff login and print it."

    def handle(self, *args, **options):
        username, password = ensure_local_admin()
        self.stdout.write(f"user {username} password {password}")
