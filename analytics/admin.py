from django.contrib import admin, messages
from django.utils import timezone

from analytics.models import ApiToken, Organization


class ApiTokenInline(admin.TabularInline):
    model = ApiToken
    extra = 0
    can_delete = False
    fields = ["name", "prefix", "read_only", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [ApiTokenInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["__str__", "org", "read_only", "created_at", "last_used_at", "status"]
    list_filter = ["read_only", ("revoked_at", admin.EmptyFieldListFilter), "org"]
    search_fields = ["name", "prefix", "org__slug"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["org", "name", "read_only"]
        return ["org", "name", "read_only", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["org"] if obj else [])

    @admin.display(description="status")
    def status(self, obj):
        return "revoked" if obj.is_revoked else "active"

    def save_model(self, request, obj, form, change):
        raw = None if change else obj.set_new_secret()
        super().save_model(request, obj, form, change)
        if raw:
            messages.warning(request, f"The new token is {raw} — copy it now: it is stored only as a hash.")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.")
