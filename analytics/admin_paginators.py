from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows (``SELECT COUNT(*) FROM (... LIMIT CAP)``), so a page of a table with
    millions of events never scans them all. Past the cap the admin shows CAP and stops paging there."""

    CAP = 100_000

    @cached_property
    def count(self):
        return self.object_list[: self.CAP].count()
