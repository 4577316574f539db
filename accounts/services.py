"""Writes on licenses, domains, logins and memberships, each audited (accounts.audit)."""

from django.db import transaction

from accounts.audit import audit_record, model_changes
from accounts.domains import normalize_domain
from accounts.models import Domain, License, Membership, User
from accounts.signals import license_timezone_changed


@transaction.atomic
def license_save(*, acting_user: User | None, license: License, reason: str = "") -> License:
    """Create or update a license, recording who changed what."""
    fields = [
        "name", "key", "license_type", "status", "contact_email", "member_since",
        "timezone", "low_balance_threshold",
    ]  # fmt: skip
    creating = license.pk is None
    changes = model_changes(license, fields)
    timezone_changed = not creating and "timezone" in changes
    license.full_clean()
    license.save()
    if changes:
        audit_record(
            actor=acting_user,
            license=license,
            action="license.create" if creating else "license.update",
            target=f"license {license.key}",
            changes=changes,
            reason=reason,
        )
    if timezone_changed:
        # Whatever is kept by the license's local day (billing's rollups) is rebuilt by
        # its owner, inside this transaction.
        license_timezone_changed.send(sender=License, license=license)
    return license


@transaction.atomic
def domain_save(*, acting_user: User | None, domain: Domain) -> Domain:
    creating = domain.pk is None
    domain.hostname = normalize_domain(domain.hostname)
    changes = model_changes(domain, ["hostname", "is_primary", "license_id"])
    domain.full_clean()
    if domain.is_primary:
        Domain.objects.for_license(domain.license).exclude(pk=domain.pk).update(is_primary=False)
    domain.save()
    if changes:
        audit_record(
            actor=acting_user,
            license=domain.license,
            action="domain.create" if creating else "domain.update",
            target=f"domain {domain.hostname}",
            changes=changes,
        )
    return domain


@transaction.atomic
def domain_delete(*, acting_user: User | None, domain: Domain) -> None:
    audit_record(
        actor=acting_user,
        license=domain.license,
        action="domain.delete",
        target=f"domain {domain.hostname}",
    )
    domain.delete()


@transaction.atomic
def membership_save(*, acting_user: User | None, membership: Membership) -> Membership:
    creating = membership.pk is None
    changes = model_changes(membership, ["user_id", "role", "license_id"])
    membership.full_clean()
    membership.save()
    if changes:
        audit_record(
            actor=acting_user,
            license=membership.license,
            action="membership.create" if creating else "membership.update",
            target=f"membership {membership.user.email}",
            changes=changes,
        )
    return membership


@transaction.atomic
def membership_delete(*, acting_user: User | None, membership: Membership) -> None:
    audit_record(
        actor=acting_user,
        license=membership.license,
        action="membership.delete",
        target=f"membership {membership.user.email}",
    )
    membership.delete()


@transaction.atomic
def license_key_reveal(*, acting_user: User, license: License) -> str:
    """An owner shows the full license key (the Test API page): recorded in the audit trail."""
    audit_record(
        actor=acting_user,
        license=license,
        action="license.key_reveal",
        target=f"license {license.masked_key}",
    )
    return license.key
