from analytics.api import tokens
from analytics.api.routes import api_path

urlpatterns = [
    *api_path("me", tokens.WhoAmIView.as_view(), "me"),
    *api_path("tokens", tokens.TokenListView.as_view(), "token-list"),
    *api_path("tokens/<int:pk>", tokens.TokenDetailView.as_view(), "token-detail"),
]
