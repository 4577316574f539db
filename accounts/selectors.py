from uuid import UUID

from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import AuditEvent, Domain, License, Membership, User


def licenses_for_user(user: User) -> QuerySet[License]:
    """Licenses the login is a member of, by name."""
    return License.objects.filter(memberships__user=user).order_by("name", "pk")


def license_get_for_user(*, user: User, public_id: UUID | str) -> License:
    """The license with this public id if the login is a member of it; otherwise 404.

    404 whether the license does not exist or belongs to someone else: no hint either way.
    """
    license = licenses_for_user(user).filter(public_id=public_id).first()
    if license is None:
        raise Http404("No such license")
    return license


def membership_role(*, user: User, license: License) -> str | None:
    return (
        Membership.objects.for_license(license)
        .filter(user=user)
        .values_list("role", flat=True)
        .first()
    )


def domains_for_license(license: License) -> list[Domain]:
    return list(Domain.objects.for_license(license).order_by("-is_primary", "hostname"))


def audit_events_for_license(license: License, limit: int = 50) -> QuerySet[AuditEvent]:
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
