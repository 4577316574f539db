"""The email saying a spend limit was reached: the gate refuses the license's calls for
its floor or its monthly cap. Sent to the license's alert recipients from a task, after
the `limit.reached` money event was read (billing.limits.notices), once per crossing."""

from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from billing.alerts.services import alert_recipients
from billing.events.models import MoneyEvent
from billing.money import format_money


def limit_reached_send(*, event_id: int) -> None:
    event = MoneyEvent.objects.select_related("license").get(pk=event_id)
    license, data = event.license, event.data
    cap = data.get("monthly_cap")
    context = {
        "license": license,
        "limit": data["limit"],
        "reason": data["reason"],
        "balance": format_money(Decimal(data["balance"])),
        "held": format_money(Decimal(data["held"])),
        "floor": format_money(Decimal(data["floor"])),
        "monthly_cap": format_money(Decimal(cap)) if cap is not None else "",
        "month_used": format_money(Decimal(data["month_used"])),
        "reached_at": event.created_at,
        "link": f"{settings.PORTAL_BASE_URL.rstrip('/')}{license.get_absolute_url()}",
    }
    what = "monthly spending cap" if data["limit"] == "monthly_cap" else "credit"
    send_mail(
        f"{license.name}: calls are being refused ({what} limit reached)",
        render_to_string("billing/email/limit_reached.txt", context),
        settings.DEFAULT_FROM_EMAIL,
        alert_recipients(license),
        fail_silently=False,
    )
