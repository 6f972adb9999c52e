from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from monitoring import grafana


class Command(BaseCommand):
    help = ("Create or update the Prometheus data source and the dashboards of grafana/dashboards in Grafana "
            "(docs/grafana.md).")

    def add_arguments(self, parser):
        parser.add_argument("--url", help="Grafana's address (default: GRAFANA_URL).")
        parser.add_argument("--api-key", help="A service account token (default: GRAFANA_API_KEY; prefer the "
                                              "setting: a command line is visible to other users).")
        parser.add_argument("--org-id", type=int, help="Grafana organization id (default: GRAFANA_ORG_ID).")
        parser.add_argument("--datasource-name", help="Name of the data source (default: GRAFANA_DATASOURCE_NAME).")
        parser.add_argument("--prometheus-url", help="The Prometheus that scrapes this platform, as Grafana "
                                                     "reaches it (default: GRAFANA_PROMETHEUS_URL).")
        parser.add_argument("--folder-uid", help="Save the dashboards in this Grafana folder (default: where "
                                                 "they are; the General folder for new ones).")
        parser.add_argument("--dashboards-dir", help="Directory of the dashboard JSON files "
                                                     "(default: grafana/dashboards of this checkout).")
        parser.add_argument("--dry-run", action="store_true", help="Print what would be done; send nothing.")

    def handle(self, *args, **options):
        url = options["url"] or settings.GRAFANA_URL
        api_key = options["api_key"] or settings.GRAFANA_API_KEY
        if not url:
            raise CommandError("GRAFANA_URL is not set: set it (or pass --url) to Grafana's address, "
                               "e.g. http://localhost:3000")
        if not api_key:
            raise CommandError("GRAFANA_API_KEY is not set: create a service account token (role Admin) in "
                               "Grafana, Administration > Users and access > Service accounts, and set it")
        try:
            dashboards = grafana.load_dashboards(options["dashboards_dir"] or grafana.GRAFANA_DASHBOARDS_DIR)
            result = grafana.sync(
                url, api_key,
                options["org_id"] or settings.GRAFANA_ORG_ID,
                options["datasource_name"] or settings.GRAFANA_DATASOURCE_NAME,
                options["prometheus_url"] or settings.GRAFANA_PROMETHEUS_URL,
                dashboards=dashboards, folder_uid=options["folder_uid"], refresh=settings.GRAFANA_DASHBOARD_REFRESH,
                dry_run=options["dry_run"], log=self.stdout.write,
            )
        except grafana.GrafanaError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(result.summary())
