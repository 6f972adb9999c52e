"""``GET dashboard`` (seed 003): an org's current figures, daily trend, API performance and service health."""

from datetime import timedelta
from typing import ClassVar

from analytics.api.activity_reads import OneOrgQuery, OneOrgView
from analytics.platform.contracts import WindowQuery, endpoint
from monitoring.services.dashboard import Dashboard, dashboard


class DashboardQuery(WindowQuery, OneOrgQuery):
    default_window: ClassVar[timedelta] = timedelta(days=7)


class DashboardView(OneOrgView):
    @endpoint(operation_id="analytics_dashboard", query=DashboardQuery, response=Dashboard,
              summary="An org's users, agents, contracts and revenue over a window (default 7 days), its daily "
                      "trend, API performance and service health")
    def get(self, request, query):
        return dashboard(self.one_org(), query.window())
