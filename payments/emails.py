"""The emails of payments: each auto top-up and each failure (to the license's alert
recipients), and disputes (to the billing team). Sent from tasks, after commit."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from accounts.models import License
from billing.alerts.services import alert_recipients
from billing.ledger.selectors import balance_get
from billing.money import format_money
from payments.models import Dispute, Payment

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
