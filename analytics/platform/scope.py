"""Whose rows a read covers or a write belongs to: one org, the platform, or all orgs.

Rows carry an ``org`` foreign key; a row with no org belongs to the *platform*
(staff and anonymous API requests, platform alert rules). Three scopes follow:

- ``Scope.of(org)``: that org's rows (what a token reads and writes);
- ``PLATFORM``: the rows with no org (written by request tracking of staff requests);
- ``ALL_ORGS``: every org's rows and the platform's (staff reads, the in-process client,
  platform alert rules). It can be read but not written to.

Services take ``org=`` as a ``Scope`` or an ``Organization`` and normalise it once
with ``as_scope``; ``None`` is refused, so a forgotten org fails loudly instead of
silently meaning "everything".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from analytics.platform.tenancy import Organization


@dataclass(frozen=True)
class Scope:
    """One of ALL_ORGS, PLATFORM or ``Scope.of(org)``; compare with ``==`` or the ``is_*`` properties."""

    kind: Literal["org", "platform", "all"]
    org: Organization | None = None  # set only for kind "org"

    @classmethod
    def of(cls, org: Organization) -> Scope:
        if not isinstance(org, Organization):
            raise TypeError(f"Scope.of() takes an Organization, not {org!r}.")
        return cls("org", org)

    @property
    def is_all(self) -> bool:
        return self.kind == "all"

    @property
    def is_platform(self) -> bool:
        return self.kind == "platform"

    @property
    def org_id(self) -> int | None:
        """The org's primary key; None for ALL_ORGS and PLATFORM."""
        return self.org.pk if self.org is not None else None

    def filter(self, queryset, field: str = "org"):
        """The rows of ``queryset`` in this scope; ``field`` is the foreign key to Organization."""
        if self.is_all:
            return queryset
        if self.is_platform:
            return queryset.filter(**{f"{field}__isnull": True})
        return queryset.filter(**{field: self.org})

    def sql(self, column: str = "org_id") -> tuple[str, list]:
        """The same condition for raw SQL: ``(condition, params)``; always true for ALL_ORGS."""
        if self.is_all:
            return "1 = 1", []
        if self.is_platform:
            return f"{column} IS NULL", []
        return f"{column} = %s", [self.org_id]

    def owner(self) -> Organization | None:
        """The org a written row gets (None: the platform). All orgs together own no row."""
        if self.is_all:
            raise ValueError("Cannot write to ALL_ORGS: write to one org (Scope.of(org)) or to PLATFORM.")
        return self.org

    def __str__(self) -> str:
        if self.is_all:
            return "all orgs"
        if self.is_platform:
            return "the platform"
        assert self.org is not None  # kind "org" always carries its org (Scope.of)
        return self.org.slug


ALL_ORGS = Scope("all")
PLATFORM = Scope("platform")
ScopeLike = Scope | Organization  # what a service's ``org=`` accepts


def as_scope(value: ScopeLike) -> Scope:
    """A Scope as it is, an Organization as its own scope; anything else (notably None) is a TypeError."""
    if isinstance(value, Scope):
        return value
    if isinstance(value, Organization):
        return Scope.of(value)
    if value is None:
        raise TypeError("org=None is ambiguous: pass ALL_ORGS (every org's data), PLATFORM (rows with no org) "
                        "or an Organization.")
    raise TypeError(f"Expected a Scope or an Organization, not {type(value).__name__}.")
