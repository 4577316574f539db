"""Reads of accounts: a login's licenses and its access to one, the audit trail, and the staff's license search."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Case, F, OuterRef, Q, QuerySet, When
from django.http import Http404

from accounts.models import AuditEvent, Domain, License, Membership, User
from portal.sql import CompiledQuery


def licenses_for_user(user: User) -> QuerySet[License]:
    """Licenses the login is a member of, by name."""
    return License.objects.filter(memberships__user=user).order_by("name", "pk")


@dataclass(frozen=True)
class LicenseAccess:
    """A login's way into one of its licenses: the license, the login's role in it, its
    domains' hostnames (primary first) and its other licenses (the dashboard's license
    switcher), by name."""

    license: License
    role: str
    domains: list[str]
    others: list[License]


def _license_access(*, user_id: int, public_id: UUID) -> QuerySet[License]:
    """The login's licenses with its role in each and the wanted one's domains."""
    hostnames = (
        Domain.objects.for_license(OuterRef("pk"))
        .order_by("-is_primary", "hostname")
        .values("hostname")
    )
    return (
        License.objects.filter(memberships__user_id=user_id)
        .annotate(
            # The same join as the filter's: the role of this login's membership.
            access_role=F("memberships__role"),
            access_domains=Case(When(public_id=public_id, then=ArraySubquery(hostnames))),
        )
        .order_by("name", "pk")
    )


# Compiled once per process (portal/sql.py): building and compiling the queryset cost more
# than running it, on the page every customer request starts with. The stand-ins are
# never a real login or license.
_LICENSE_ACCESS = CompiledQuery(
    "license access",
    _license_access,
    user_id=-7_734_019,
    public_id=UUID("00000000-0000-4000-8000-7734019a11c3"),
)


def license_access_get(*, user: User, public_id: UUID | str) -> LicenseAccess:
    """The license with this public id, the login's role, the license's domains and the
    login's other licenses, from the login's memberships in one query (every customer page
    reads this first, on the primary: a removed membership is refused at once). The domains
    are a subquery evaluated for the wanted license's row only (inside the CASE).

    404 whether the license does not exist or belongs to someone else: no hint either way.
    """
    try:
        wanted = public_id if isinstance(public_id, UUID) else UUID(str(public_id))
    except ValueError:
        raise Http404("No such license") from None
    licenses: list[Any] = _LICENSE_ACCESS.rows(user_id=user.pk, public_id=wanted)
    mine = next((lic for lic in licenses if lic.public_id == wanted), None)
    if mine is None:
        raise Http404("No such license")
    others = [lic for lic in licenses if lic is not mine]
    return LicenseAccess(
        license=mine, role=mine.access_role, domains=mine.access_domains, others=others
    )


def audit_events_for_license(license: License, limit: int = 50) -> QuerySet[AuditEvent]:
    """The license's audit trail, newest first (the staff license page's recent rows)."""
    return (
        AuditEvent.objects.for_license(license)
        .select_related("actor")
        .order_by("-created_at", "-pk")[:limit]
    )


def license_search(term: str) -> "QuerySet[License]":
    """Licenses a staff search names: by key (exact or part), name, contact email, domain
    or a member's email (part of any). Each part is one subquery on `license_id`, so no
    join multiplies rows; the contains-matches are served by the trigram indexes
    (accounts.0004), whatever the number of logins."""
    term = term.strip()
    if not term:
        return License.objects.all()
    members = Membership.objects.filter(
        user__in=User.objects.filter(email__icontains=term).values("pk")
    ).values("license_id")
    domains = Domain.objects.filter(hostname__icontains=term).values("license_id")
    own = License.objects.filter(
        Q(key__icontains=term) | Q(name__icontains=term) | Q(contact_email__icontains=term)
    ).values("pk")
    return License.objects.filter(pk__in=own.union(domains, members))
