"""What every API view shares (API.md, Conventions): org scoping, windows, tag filters, batches.

Views subclass ``ApiView`` (or mix in ``OrgScopeMixin`` with a DRF generic view)
instead of re-implementing any of this.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rest_framework.views import APIView

from analytics.platform.auth import TokenPrincipal
from analytics.platform.errors import field_error
from analytics.platform.pagination import StandardPagination
from analytics.platform.scope import ALL_ORGS, Scope
from analytics.platform.tenancy import SLUG_PATTERN, Organization

if TYPE_CHECKING:
    _MixedIntoView = APIView  # the mixin's ``self`` is a DRF view (its ``request`` and the rest)
else:
    _MixedIntoView = object


class OrgScopeMixin(_MixedIntoView):
    """Which org a request reads and writes.

    A token acts for its own org. Staff with a session read all orgs, or one with
    ``?org=<slug>``, and must name one with ``?org=`` to write.
    """

    @property
    def is_staff_request(self) -> bool:
        return not isinstance(self.request.user, TokenPrincipal)

    def _org_param(self) -> str | None:
        """``?org=``, checked as the schema states it for every caller (a token ignores a valid one)."""
        slug = self.request.query_params.get("org")
        if slug is not None and not re.fullmatch(SLUG_PATTERN, slug):
            raise field_error("org", "Must be an organisation's slug.")
        return slug

    def _org_from_query(self) -> Organization | None:
        slug = self._org_param()
        if slug is None:
            return None
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise field_error("org", f"No organisation with slug {slug!r}.")
        return org

    def read_org(self) -> Scope:
        """The scope to read: the token's org; for staff, ``?org=`` or else ALL_ORGS."""
        if isinstance(self.request.user, TokenPrincipal):
            self._org_param()
            return Scope.of(self.request.user.org)
        org = self._org_from_query()
        return ALL_ORGS if org is None else Scope.of(org)

    def write_org(self, body_org_id: str | None = None) -> Organization:
        if isinstance(self.request.user, TokenPrincipal):
            self._org_param()
            org = self.request.user.org
        else:
            query_org = self._org_from_query()
            if query_org is None:
                raise field_error("org", "Staff must name the organisation to write to with ?org=<slug>.")
            org = query_org
        if body_org_id not in (None, "") and body_org_id != org.slug:
            raise field_error("org_id", f"Must be this token's organisation {org.slug!r}.")
        return org

    def scope(self, queryset, field: str = "org"):
        return self.read_org().filter(queryset, field)


class ApiView(OrgScopeMixin, APIView):
    """Base of every API view."""

    pagination_class = StandardPagination

    def paginated(self, rows):
        """A page of ``rows`` (response contracts), as API.md's Lists say."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, self.request, view=self)
        return paginator.get_paginated_response([row.render() for row in page])
