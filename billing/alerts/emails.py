"""The low-balance alert email: its message, and sending an owed alert once, with no lock
or transaction held while talking to the mail server."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import License
from billing.forecast import forecast_get
from billing.models import BalanceAlert, LicenseBalance
from billing.money import format_money
from portal.leases import lease_acquire, lease_release

logger = logging.getLogger(__name__)


def balance_alerts_owed(*, older_than_seconds: int = 120) -> list[int]:
    """Alerts never attempted a while after they were owed (their hand-over was lost)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        BalanceAlert.objects.filter(sent_at__isnull=True, attempts=0, crossed_at__lt=cutoff)
        .order_by("crossed_at")
        .values_list("pk", flat=True)[:500]
    )


def _purchase_link(license: License) -> str:
    if getattr(settings, "PURCHASE_URL", ""):
        return settings.PURCHASE_URL
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{license.get_absolute_url()}"


def balance_alert_message(alert: BalanceAlert) -> EmailMultiAlternatives:
    license = alert.license
    balance = LicenseBalance.objects.for_license(license).first()
    forecast = forecast_get(license, balance=balance.balance if balance else alert.balance)
    context = {
        "alert": alert,
        "license": license,
        "balance": format_money(alert.balance),
        "threshold": format_money(alert.threshold),
        "average_daily": format_money(forecast.average_daily),
        "forecast": forecast,
        "purchase_link": _purchase_link(license),
    }
    subject = render_to_string("billing/email/balance_alert_subject.txt", context).strip()
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("billing/email/balance_alert.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
    )
    message.attach_alternative(
        render_to_string("billing/email/balance_alert.html", context), "text/html"
    )
    return message


def _alert_send_lease_seconds() -> float:
    # Long enough for the SMTP exchange with every recipient (each bounded by EMAIL_TIMEOUT).
    return float(settings.EMAIL_TIMEOUT or 10) * 3 + 30


def balance_alert_send(*, alert_id: int) -> bool:
    """Send an owed alert once. Returns False if it was already sent (or another delivery
    of the task is sending it right now).

    No lock or transaction is held while talking to the mail server: a lease on the alert
    (portal/leases.py) keeps two deliveries from both sending, the attempt is counted before
    sending and the outcome recorded after, each in its own short statement. A failure is
    recorded and then raised so the task retries. A worker killed mid-send leaves the lease
    to expire, and a later delivery sends the alert (at least once, never silently lost).
    """
    key = f"balance_alert:{alert_id}"
    holder = lease_acquire(key=key, seconds=_alert_send_lease_seconds())
    if holder is None:
        logger.info("balance alert %s: another delivery is sending it", alert_id)
        return False
    try:
        alert = BalanceAlert.objects.select_related("license").get(pk=alert_id)
        if alert.sent_at is not None:
            return False
        template = balance_alert_message(alert)
        messages = [
            EmailMultiAlternatives(
                subject=template.subject,
                body=template.body,
                from_email=template.from_email,
                to=[address],
                alternatives=template.alternatives,
            )
            for address in alert.recipients
        ]
        BalanceAlert.objects.filter(pk=alert_id).update(attempts=F("attempts") + 1)
        try:
            get_connection(fail_silently=False).send_messages(messages)
        except Exception as exc:  # any transport error: record it, retry later
            last_error = f"{type(exc).__name__}: {exc}"[:2000]
            BalanceAlert.objects.filter(pk=alert_id).update(last_error=last_error)
            logger.warning("balance alert %s not sent: %s", alert_id, last_error)
            raise
        BalanceAlert.objects.filter(pk=alert_id).update(sent_at=timezone.now(), last_error="")
    finally:
        lease_release(key=key, holder=holder)
    logger.info(
        "balance alert sent license=%s kind=%s recipients=%s",
        alert.license.key, alert.kind, len(alert.recipients),
    )  # fmt: skip
    return True
