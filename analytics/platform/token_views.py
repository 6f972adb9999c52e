"""The caller's own org and its tokens (never their secrets)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView, RetrieveDestroyAPIView
from rest_framework.response import Response

from analytics.platform.conventions import ApiView, OrgScopeMixin
from analytics.platform.tenancy import ApiToken


class ApiTokenSerializer(serializers.ModelSerializer):
    org = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    revoked = serializers.BooleanField(source="is_revoked", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "org", "name", "prefix", "read_only", "created_at", "last_used_at", "revoked", "revoked_at"]
        read_only_fields = fields


class WhoAmISerializer(serializers.Serializer):
    org = serializers.CharField(allow_null=True)
    staff = serializers.BooleanField()
    read_only = serializers.BooleanField()
    token = serializers.CharField(allow_null=True)


class WhoAmIView(ApiView):
    @extend_schema(responses=WhoAmISerializer, summary="Who the caller is and which org it acts for")
    def get(self, request):
        org = self.read_org()
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return Response(
            {
                "org": org.slug if org else None,
                "staff": self.is_staff_request,
                "read_only": bool(token and token.read_only),
                "token": token.prefix if token else None,
            }
        )


class TokenListView(OrgScopeMixin, ListAPIView):
    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return self.scope(ApiToken.objects.select_related("org"))


class TokenDetailView(OrgScopeMixin, RetrieveDestroyAPIView):
    """``DELETE`` revokes the token (the row stays, for the record)."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        return self.scope(ApiToken.objects.select_related("org"))

    def perform_destroy(self, instance):
        instance.revoke()
