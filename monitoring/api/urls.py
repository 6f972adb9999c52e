from analytics.platform.routes import api_path
from monitoring.api import dashboard, views

urlpatterns = [
    *api_path("monitoring/health", views.HealthSummaryView.as_view(), "monitoring-health"),
    *api_path("monitoring/health/<slug_name:service>", views.ServiceHealthView.as_view(), "monitoring-service-health"),
    *api_path("monitoring/sla/<slug_name:service>", views.ServiceSlaView.as_view(), "monitoring-sla"),
    *api_path("dashboard", dashboard.DashboardView.as_view(), "dashboard"),
]
