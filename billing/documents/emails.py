"""A document's email to the license's alert recipients, its PDF attached: sent by a worker
after the issuing transaction commits (billing.handoffs.send_document_email), once."""

from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from billing.alerts.services import alert_recipients
from billing.documents.models import Document
from billing.documents.pdf import document_facts, document_pdf


def document_email_send(*, document_id: int) -> bool:
    """Email the document once: False when it was already sent. The row is locked while
    sending, so two workers handed the same document send it once."""
    with transaction.atomic():
        document = (
            Document.objects.select_for_update(of=("self",))
            .select_related("license", "invoice")
            .get(pk=document_id)
        )
        if document.emailed_at is not None:
            return False
        license = document.license
        facts = document_facts(document)
        message = EmailMessage(
            subject=f"{facts.title} {facts.number} for {license.name} ({facts.total})",
            body=render_to_string(
                "billing/email/document_issued.txt",
                {
                    "facts": facts,
                    "license": license,
                    "link": f"{settings.PORTAL_BASE_URL.rstrip('/')}{license.get_absolute_url()}",
                },
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=alert_recipients(license),
        )
        message.attach(f"{document.number}.pdf", document_pdf(document), "application/pdf")
        message.send(fail_silently=False)
        document.emailed_at = timezone.now()
        document.save(update_fields=["emailed_at"])
    return True


def document_emails_owed() -> list[int]:
    """Documents whose email a lost hand-over left unsent (older than a minute)."""
    before = timezone.now() - timedelta(minutes=1)
    return list(
        Document.objects.filter(emailed_at__isnull=True, issued_at__lt=before).values_list(
            "pk", flat=True
        )[:500]
    )
