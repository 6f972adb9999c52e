"""Pieces the admin pages of every app share."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows (``SELECT COUNT(*) FROM (... LIMIT CAP)``), so a page of a table with
    millions of events never scans them all. Past the cap the admin shows CAP and stops paging there."""

    CAP = 100_000

    @cached_property
    def count(self):
        return self.object_list[: self.CAP].count()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the platform writes (events, history, logs): staff look at them but never add or edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
