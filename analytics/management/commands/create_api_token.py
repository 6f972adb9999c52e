from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from analytics.platform.accounts import create_api_token


class Command(BaseCommand):
    help = "Create an API token for an org (created if missing) and print the token alone on stdout."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The org's slug.")
        parser.add_argument("--name", default="", help="A label for the token.")
        parser.add_argument("--read-only", action="store_true", help="The token may only read.")

    def handle(self, *args, org, name, read_only, **options):
        try:
            _, raw = create_api_token(org, name=name, read_only=read_only)
        except ValidationError as error:
            raise CommandError(f"--org: {' '.join(error.messages)}") from None
        self.stdout.write(raw)
