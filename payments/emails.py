"""The emails of payments: each auto top-up and each failure (to the license's alert
recipients), a card refund (to the owners), and disputes (to the billing team). Sent from
tasks, after commit."""

import logging
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from accounts.models import License, Membership
from billing.alerts.services import alert_recipients
from billing.events.models import MoneyEvent
from billing.ledger.kinds import PURCHASE_REFUND
from billing.ledger.selectors import balance_get
from billing.money import format_money
from payments.models import Dispute, Payment
from portal.moments import format_local_time

logger = logging.getLogger(__name__)


def _send(*, subject: str, template: str, context: dict[str, object], to: list[str]) -> None:
    body = render_to_string(template, context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to, fail_silently=False)


def _link(license: License) -> str:
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{license.get_absolute_url()}"


def auto_topup_succeeded_send(*, payment_id: int) -> None:
    payment = Payment.objects.select_related("license").get(pk=payment_id)
    license = payment.license
    _send(
        subject=f"Auto top-up: {format_money(payment.amount, 2)} added to {license.name}",
        template="payments/email/auto_topup_succeeded.txt",
        context={
            "license": license,
            "payment": payment,
            "amount": format_money(payment.amount),
            "balance": format_money(balance_get(license).balance),
            "link": _link(license),
        },
        to=alert_recipients(license),
    )


def auto_topup_failed_send(*, license_id: int, message: str, switched_off: bool) -> None:
    license = License.objects.get(pk=license_id)
    _send(
        subject=f"Auto top-up failed for {license.name}",
        template="payments/email/auto_topup_failed.txt",
        context={
            "license": license,
            "message": message,
            "switched_off": switched_off,
            "balance": format_money(balance_get(license).balance),
            "link": _link(license),
        },
        to=alert_recipients(license),
    )


def auto_topup_capped_send(*, license_id: int, why: str) -> None:
    license = License.objects.get(pk=license_id)
    _send(
        subject=f"Auto top-up paused for {license.name}",
        template="payments/email/auto_topup_capped.txt",
        context={
            "license": license,
            "why": why,
            "balance": format_money(balance_get(license).balance),
            "link": _link(license),
        },
        to=alert_recipients(license),
    )


def dispute_opened_send(*, dispute_id: int) -> None:
    dispute = Dispute.objects.select_related("license", "payment").get(pk=dispute_id)
    _send(
        subject=f"Dispute opened on payment #{dispute.payment_id} ({dispute.license.name})",
        template="payments/email/dispute_opened.txt",
        context={
            "dispute": dispute,
            "license": dispute.license,
            "amount": format_money(dispute.payment.amount, 2),
        },
        to=[settings.BILLING_TEAM_EMAIL or settings.SUPPORT_EMAIL],
    )


def _owners(license: License) -> list[str]:
    """The license's active owners; its contact email when it has none."""
    owners = list(
        Membership.objects.for_license(license)
        .filter(role=Membership.Role.OWNER, user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
    return owners or [license.contact_email]


def card_refund_send(*, event_id: int) -> None:
    """A card purchase refunded (its `purchase.refunded` money event, read once): the owners
    are told how much goes back to which card, when (the license's local time, its zone
    named), and which purchase it reverses."""
    event = MoneyEvent.objects.select_related("license").get(pk=event_id)
    license, data = event.license, event.data
    purchase_id = data["purchase_id"]
    payment = Payment.objects.filter(ledger_entry_id=purchase_id).first()
    amount = format_money(Decimal(data["amount"]))
    _send(
        subject=f"{PURCHASE_REFUND.label} #{purchase_id}: {amount} ({license.name})",
        template="payments/email/card_refund.txt",
        context={
            "license": license,
            "label": PURCHASE_REFUND.label,
            "purchase_id": purchase_id,
            "amount": amount,
            "card": payment.card_label if payment is not None else "",
            "payment": payment,
            "at": format_local_time(datetime.fromisoformat(data["occurred_at"]), license.timezone),
            "balance": format_money(Decimal(data["balance_after"])),
            "link": _link(license),
        },
        to=_owners(license),
    )
