from rest_framework import permissions

from analytics.platform.auth import TokenPrincipal


def is_staff_session(user) -> bool:
    return bool(user and user.is_authenticated and not isinstance(user, TokenPrincipal) and user.is_staff)


class ApiAccess(permissions.BasePermission):
    """Any valid token may read; writing needs a token that is not read-only. Staff sessions may do both."""

    message = "This token is read-only."

    def has_permission(self, request, view):
        user = request.user
        if isinstance(user, TokenPrincipal):
            return request.method in permissions.SAFE_METHODS or not user.read_only
        if user is None or not user.is_authenticated:
            return False
        self.message = "Only staff may use the API with a session; use an API token."
        return is_staff_session(user)


class StaffOnly(permissions.BasePermission):
    message = "Staff only."

    def has_permission(self, request, view):
        return is_staff_session(request.user)


class SchemaAccess(permissions.BasePermission):
    """The schema and its docs: any valid token (read-only ones too) and staff."""

    def has_permission(self, request, view):
        return isinstance(request.user, TokenPrincipal) or is_staff_session(request.user)
