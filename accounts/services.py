"""Writes on licenses, domains, logins and memberships, each audited."""

from django.db import transaction

from accounts.domains import normalize_domain
from accounts.models import AuditEvent, Domain, License, Membership, User


def audit_record(
    *,
    actor: User | None,
    action: str,
    license: License | None = None,
    target: str = "",
    changes: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    """Write an audit row. Call it inside the transaction of the change it describes."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        license=license,
        action=action,
        target=target[:200],
        changes=changes or {},
        reason=reason,
    )


def model_changes(instance, fields) -> dict:
    """{field: [old, new]} for fields whose stored value differs from the instance's."""
    if instance.pk is None:
        return {f: [None, _plain(getattr(instance, f))] for f in fields}
    stored = type(instance)._default_manager.filter(pk=instance.pk).values(*fields).first() or {}
    return {
        f: [_plain(stored.get(f)), _plain(getattr(instance, f))]
        for f in fields
        if stored.get(f) != getattr(instance, f)
    }


def _plain(value):
    return value if isinstance(value, (str, int, bool, type(None))) else str(value)


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
        from billing.services import rollups_rebuild

        rollups_rebuild(license=license)
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
def license_alert_settings_update(
    *,
    acting_user: User,
    license: License,
    threshold,
    alert_membership_ids: list[int],
    extra_emails: list[str],
) -> License:
    """An owner sets the low-balance threshold and who gets the alerts."""
    from accounts.models import AlertRecipient
    from billing.alerts import balance_alert_threshold_changed
    from billing.money import quantize_money

    memberships = Membership.objects.for_license(license).select_related("user")
    before = {
        "low_balance_threshold": str(license.low_balance_threshold),
        "alert_members": sorted(m.user.email for m in memberships if m.receives_alerts),
        "extra_emails": sorted(
            AlertRecipient.objects.for_license(license).values_list("email", flat=True)
        ),
    }
    license.low_balance_threshold = quantize_money(threshold)
    license.full_clean()
    license.save(update_fields=["low_balance_threshold", "updated_at"])
    wanted = set(alert_membership_ids)
    for membership in memberships:
        receives = membership.pk in wanted
        if membership.receives_alerts != receives:
            membership.receives_alerts = receives
            membership.save(update_fields=["receives_alerts", "updated_at"])
    AlertRecipient.objects.for_license(license).exclude(email__in=extra_emails).delete()
    for email in extra_emails:
        AlertRecipient.objects.get_or_create(license=license, email=email)
    after = {
        "low_balance_threshold": str(license.low_balance_threshold),
        "alert_members": sorted(m.user.email for m in memberships if m.receives_alerts),
        "extra_emails": sorted(extra_emails),
    }
    changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changes:
        audit_record(
            actor=acting_user,
            license=license,
            action="license.alert_settings",
            target=f"license {license.key}",
            changes=changes,
        )
    balance_alert_threshold_changed(license=license)
    return license
