from analytics.platform.routes import api_path
from monitoring.api import views

urlpatterns = [
    *api_path("monitoring/health", views.HealthSummaryView.as_view(), "monitoring-health"),
    *api_path("monitoring/health/<str:service>", views.ServiceHealthView.as_view(), "monitoring-service-health"),
    *api_path("monitoring/sla/<str:service>", views.ServiceSlaView.as_view(), "monitoring-sla"),
]
