from alerts.api import views
from analytics.platform.routes import api_path

urlpatterns = [
    # The fixed words first, then the {id} patterns.
    *api_path("alerts/rules", views.AlertRuleListView.as_view(), "alert-rule-list"),
    *api_path("alerts/rules/<int:pk>", views.AlertRuleDetailView.as_view(), "alert-rule-detail"),
    *api_path("alerts/incidents", views.IncidentListView.as_view(), "alert-incident-list"),
    *api_path("alerts/incidents/<int:pk>", views.IncidentDetailView.as_view(), "alert-incident-detail"),
    *api_path("alerts/incidents/<int:pk>/acknowledge", views.AcknowledgeView.as_view(), "alert-incident-acknowledge"),
    *api_path("alerts/incidents/<int:pk>/resolve", views.ResolveView.as_view(), "alert-incident-resolve"),
    *api_path("alerts/incidents/<int:pk>/silence", views.SilenceView.as_view(), "alert-incident-silence"),
]
