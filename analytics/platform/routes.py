"""How API paths are written: with and without a trailing slash, and what a path parameter may hold.

A path parameter that could never name anything (a control character, which PostgreSQL cannot even
compare) does not match its route: a 404, like any other unknown path. drf-spectacular writes each
converter's regex into the schema as the parameter's pattern.
"""

from django.urls import path, register_converter

from analytics.platform.tenancy import SLUG_PATTERN


class _Text:
    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class PrintableSegment(_Text):
    """``<printable:name>``: one segment (no ``/``) of printable characters."""

    regex = r"[^/\x00-\x1f\x7f-\x9f]+"


class PrintablePath(_Text):
    """``<printable_path:name>``: printable characters, ``/`` included (metric names may hold one)."""

    regex = r"[^\x00-\x1f\x7f-\x9f]+"


class Slug(_Text):
    """``<slug_name:name>``: an org's or a service's slug (tenancy.SLUG_PATTERN)."""

    regex = SLUG_PATTERN.removeprefix("^").removesuffix("$")


register_converter(PrintableSegment, "printable")
register_converter(PrintablePath, "printable_path")
register_converter(Slug, "slug_name")


def api_path(route: str, view, name: str) -> list:
    """Serve ``route`` exactly as written and with a trailing slash (no redirect, POST included)."""
    route = route.rstrip("/")
    return [path(route, view, name=name), path(route + "/", view, name=name)]
