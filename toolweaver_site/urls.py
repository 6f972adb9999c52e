from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from analytics.api.otlp import OtlpMetricsView, OtlpTracesView
from analytics.platform.routes import api_path
from monitoring import prometheus
from toolweaver_site import dashboards, views

API_PREFIX = "api/v1/analytics/"

handler404 = "analytics.platform.errors.json_not_found"
handler500 = "analytics.platform.errors.json_server_error"

# "View site" in the admin's header leads to the API docs (staff are logged in, so they open).
admin.site.site_url = "/api/docs/"

# Every pattern is named: django-prometheus labels its request metrics with the view name.
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    # The admin's home is the ops home, and the dashboards live inside the admin (toolweaver_site/dashboards.py):
    # both routed ahead of admin.site.urls.
    path("admin/", dashboards.ops_home, name="ops-home"),
    path("admin/dashboards/", dashboards.dashboard_index, name="ops-dashboards"),
    path("admin/dashboards/<slug:slug>/", dashboards.dashboard_page, name="ops-dashboard"),
    path("admin/", admin.site.urls),
    path(API_PREFIX, include("analytics.api.urls")),
    path(API_PREFIX, include("monitoring.api.urls")),
    path(API_PREFIX, include("alerts.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # The OTLP/HTTP receiver: OTEL_EXPORTER_OTLP_ENDPOINT=<this server>/otlp (docs/otlp.md).
    *api_path("otlp/v1/metrics", OtlpMetricsView.as_view(), "otlp-metrics"),
    *api_path("otlp/v1/traces", OtlpTracesView.as_view(), "otlp-traces"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    # Prometheus scrapes this: the process's metrics and the store's (monitoring/prometheus.py).
    path("metrics", prometheus.metrics_view, name="prometheus-django-metrics"),
]
