"""The caller's own org and its tokens (never their secrets)."""

from pydantic import Field
from rest_framework import serializers
from rest_framework.generics import ListAPIView, RetrieveDestroyAPIView

from analytics.platform.contracts import OrgQuery, ResponseContract, endpoint
from analytics.platform.conventions import ApiView, OrgScopeMixin
from analytics.platform.tenancy import ApiToken, Organization


class ApiTokenSerializer(serializers.ModelSerializer):
    org: serializers.SlugRelatedField[Organization] = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "org", "name", "prefix", "read_only", "created_at", "last_used_at"]
        read_only_fields = fields


class WhoAmI(ResponseContract):
    org: str | None = Field(description="The org the caller acts for (staff without ?org=: null, all orgs).")
    staff: bool
    read_only: bool
    token: str | None = Field(description="The token's prefix (never the token).")


class WhoAmIView(ApiView):
    @endpoint(query=OrgQuery, response=WhoAmI, summary="Who the caller is and which org it acts for")
    def get(self, request, query):
        token = request.auth if isinstance(request.auth, ApiToken) else None
        org = self.read_org().org
        return WhoAmI(org=org.slug if org else None, staff=self.is_staff_request,
                      read_only=bool(token and token.read_only), token=token.prefix if token else None)


class ActiveTokensMixin(OrgScopeMixin):
    """The API shows the tokens in use: a revoked one is gone from it (its row stays, shown in the admin)."""

    def get_queryset(self):
        return self.scope(ApiToken.objects.filter(revoked_at__isnull=True).select_related("org"))


class TokenListView(ActiveTokensMixin, ListAPIView):
    serializer_class = ApiTokenSerializer


class TokenDetailView(ActiveTokensMixin, RetrieveDestroyAPIView):
    """``DELETE`` revokes the token: afterwards it answers 404 here, and cannot authenticate."""

    serializer_class = ApiTokenSerializer

    def perform_destroy(self, instance):
        instance.revoke()
