"""The email that tells a customer their flagged charge is answered (sent by a worker)."""

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from billing.models import ChargeFlag

logger = logging.getLogger(__name__)


def flag_resolved_message(flag: ChargeFlag) -> EmailMessage:
    """To the login who raised the flag: the answer, the refund if any, and the link."""
    context = {
        "flag": flag,
        "license": flag.license,
        "link": f"{settings.PORTAL_BASE_URL.rstrip('/')}{flag.license.get_absolute_url()}",
    }
    return EmailMessage(
        subject=render_to_string("billing/email/flag_resolved_subject.txt", context).strip(),
        body=render_to_string("billing/email/flag_resolved.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[flag.created_by.email],
    )


def flag_resolved_notify(*, flag_id: int) -> bool:
    """Send the answer once (False when already sent). The flag stays locked while sending,
    so two deliveries of the task cannot both send."""
    with transaction.atomic():
        flag = (
            ChargeFlag.objects.select_for_update(of=("self",))
            .select_related("license", "created_by", "refund")
            .get(pk=flag_id)
        )
        if flag.notified_at is not None or flag.status != ChargeFlag.Status.RESOLVED:
            return False
        flag_resolved_message(flag).send(fail_silently=False)
        flag.notified_at = timezone.now()
        flag.save(update_fields=["notified_at"])
    logger.info("flag answer sent flag=%s license=%s", flag.pk, flag.license.key)
    return True
