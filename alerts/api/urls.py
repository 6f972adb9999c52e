from alerts.api import notifications, preview, views
from analytics.platform.routes import api_path

urlpatterns = [
    # The fixed words first, then the {id} patterns.
    *api_path("alerts/rules", views.AlertRuleListView.as_view(), "alert-rule-list"),
    *api_path("alerts/rules/preview", preview.RulePreviewView.as_view(), "alert-rule-preview"),
    *api_path("alerts/rules/<int:pk>", views.AlertRuleDetailView.as_view(), "alert-rule-detail"),
    *api_path("alerts/rules/<int:pk>/preview", preview.SavedRulePreviewView.as_view(), "alert-rule-saved-preview"),
    *api_path("alerts/incidents", views.IncidentListView.as_view(), "alert-incident-list"),
    *api_path("alerts/incidents/<int:pk>", views.IncidentDetailView.as_view(), "alert-incident-detail"),
    *api_path("alerts/incidents/<int:pk>/acknowledge", views.AcknowledgeView.as_view(), "alert-incident-acknowledge"),
    *api_path("alerts/incidents/<int:pk>/resolve", views.ResolveView.as_view(), "alert-incident-resolve"),
    *api_path("alerts/incidents/<int:pk>/silence", views.SilenceView.as_view(), "alert-incident-silence"),
    *api_path("alerts/channels", notifications.ChannelListView.as_view(), "alert-channel-list"),
    *api_path("alerts/channels/<int:pk>", notifications.ChannelDetailView.as_view(), "alert-channel-detail"),
    *api_path("alerts/silences", notifications.SilenceListView.as_view(), "alert-silence-list"),
    *api_path("alerts/silences/<int:pk>", notifications.SilenceDetailView.as_view(), "alert-silence-detail"),
    *api_path("alerts/maintenance-windows", notifications.MaintenanceWindowListView.as_view(),
              "alert-maintenance-window-list"),
    *api_path("alerts/maintenance-windows/<int:pk>", notifications.MaintenanceWindowDetailView.as_view(),
              "alert-maintenance-window-detail"),
]
