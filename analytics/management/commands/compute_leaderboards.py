from django.core.management.base import BaseCommand

from analytics.services.leaderboards import compute_leaderboards


class Command(BaseCommand):
    help = "Compute the skill leaderboards of every org and of all orgs into leaderboard_cache."

    def handle(self, *args, **options):
        result = compute_leaderboards()
        self.stdout.write(", ".join(f"{key}: {value}" for key, value in result.items()))
