"""Low-balance alerts: one email when the balance falls below the license's threshold,
a second when it reaches zero or below, none again until it is back at or above the
threshold (a purchase or refund re-arms them).

`balance_alert_check` runs inside the transaction that changed the balance, with the
balance row locked, so two syncs crossing the line at the same moment announce it once; a
line crossed is the one rule of billing.events.crossing. The alert row is the email's own
outbox: the email goes out from a Celery task after that transaction commits
(billing.alerts.emails), and the crossing is a money event too, for the webhooks
(billing.aftermath). Owners choose the threshold and the recipients
(`license_alert_settings_update`)."""

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AlertRecipient, License, Membership, User
from billing.events.crossing import Line, crossing_step, lines_below
from billing.ledger.posting import lock_balance
from billing.models import BalanceAlert, LicenseBalance
from billing.money import quantize_money

logger = logging.getLogger(__name__)


# LicenseBalance.alert_level: the alert lines already announced (crossing_step's level).
ARMED, LOW_SENT, ZERO_SENT = 0, 1, 2


def alert_lines(threshold: Decimal) -> tuple[Line, Line]:
    """The alerts' lines: below the threshold (LOW_SENT), then zero or below (ZERO_SENT)."""
    return (Line(threshold), Line(Decimal(0), at=True))


def alert_recipients(license: License) -> list[str]:
    """Member logins who want alerts, then extra addresses; the contact email if none."""
    emails = list(
        Membership.objects.for_license(license)
        .filter(receives_alerts=True, user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
    emails += list(
        AlertRecipient.objects.for_license(license)
        .order_by("email")
        .values_list("email", flat=True)
    )
    unique = list(dict.fromkeys(e.lower() for e in emails))
    return unique or [license.contact_email.lower()]


def balance_alert_check(
    *,
    license: License,
    balance: LicenseBalance,
    latest_at: datetime | None = None,
    lowered: bool = True,
) -> BalanceAlert | None:
    """Compare the new balance with the line; owe an email if a line was crossed.

    `balance` must be locked in the current transaction and hold the balance after the
    whole batch of movements. Money coming in (`lowered=False`) only re-arms: it never
    announces a fall. Movements that all happened before `balance.alerts_since` (the
    alert settings' last change, or the license's first posting) announce nothing either:
    a first sync or a backfill replaying history is not news. The caller hands a returned
    alert to a worker once the transaction commits (billing.handoffs.balance_alert_handoff).
    """
    step = crossing_step(
        level=balance.alert_level,
        balance=balance.balance,
        lines=alert_lines(license.low_balance_threshold),
    )
    if step.crossed is not None and (
        not lowered or (latest_at is not None and latest_at < balance.alerts_since)
    ):
        return None
    if step.level != balance.alert_level:
        LicenseBalance.objects.for_license(license).update(alert_level=step.level)
        balance.alert_level = step.level
    if step.crossed is None:
        return None
    alert = BalanceAlert.objects.create(
        license=license,
        kind=BalanceAlert.Kind.ZERO if step.crossed == ZERO_SENT else BalanceAlert.Kind.LOW,
        balance=balance.balance,
        threshold=license.low_balance_threshold,
        recipients=alert_recipients(license),
    )
    logger.info(
        "balance alert owed license=%s kind=%s balance=%s threshold=%s",
        license.key, alert.kind, alert.balance, alert.threshold,
    )  # fmt: skip
    return alert


@transaction.atomic
def balance_alert_threshold_changed(*, license: License) -> None:
    """Re-arm the alerts when the balance is at or above a new threshold.

    A threshold change sends nothing by itself: the next balance change below the line
    does, as for any crossing.
    """
    balance = lock_balance(license)
    # From now on, what moves the balance is judged against the new settings.
    LicenseBalance.objects.for_license(license).update(alerts_since=timezone.now())
    if lines_below(balance.balance, alert_lines(license.low_balance_threshold)) == ARMED:
        LicenseBalance.objects.for_license(license).update(alert_level=ARMED)


@transaction.atomic
def license_alert_settings_update(
    *,
    acting_user: User,
    license: License,
    threshold: Decimal,
    alert_membership_ids: list[int],
    extra_emails: list[str],
) -> License:
    """An owner sets the low-balance threshold and who gets the alerts."""
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
