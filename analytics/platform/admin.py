"""Pieces the admin pages of every app share."""

from typing import cast

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows (``SELECT COUNT(*) FROM (... LIMIT CAP + 1)``), so a page of a table with
    millions of events never scans them all. Past the cap ``count`` is CAP (paging stops there) and the
    admin's count reads "more than 100,000" (``count_display``; toolweaver_site/templates/admin/pagination.html)."""

    CAP = 100_000

    @cached_property
    def _counted(self) -> int:
        rows = cast(QuerySet, self.object_list)  # an admin changelist pages a queryset
        return rows[: self.CAP + 1].count()

    @cached_property
    def count(self):
        return min(self._counted, self.CAP)

    @property
    def capped(self) -> bool:
        """More rows than CAP: ``count`` is a floor, not the number of rows."""
        return self._counted > self.CAP

    @property
    def count_display(self) -> str:
        return f"more than {self.CAP:,}" if self.capped else f"{self.count:,}"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the platform writes (events, history, logs): staff look at them but never add or edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
