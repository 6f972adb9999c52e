"""Lists are paginated ``{"count", "next", "previous", "results"}`` (API.md, Lists).

``page`` and ``page_size`` are checked as the schema states them: a bad value is a 400 naming the
parameter (DRF would quietly fall back to a default); a page past the last one is a 404.
"""

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def _positive_int(params, name: str, maximum: int | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1 or (maximum is not None and number > maximum):
        upper = f" to {maximum}" if maximum is not None else " or more"
        raise exceptions.ValidationError({name: [f"Must be an integer from 1{upper}."]})
    return number


class StandardPagination(PageNumberPagination):
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        return _positive_int(request.query_params, self.page_size_query_param, MAX_PAGE_SIZE) or self.page_size

    def paginate_queryset(self, queryset, request, view=None):
        _positive_int(request.query_params, self.page_query_param)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response_schema(self, schema):
        # DRF writes OpenAPI 3.0's `nullable: true` for next/previous; the schema is 3.1 (`type: [string, null]`).
        page = super().get_paginated_response_schema(schema)
        for link in ("next", "previous"):
            prop = page["properties"][link]
            if prop.pop("nullable", False):
                prop["type"] = [prop["type"], "null"]
        return page

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = MAX_PAGE_SIZE
        return parameters
