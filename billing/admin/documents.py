"""Invoices, credit notes and billing details in the admin, read-only (documents are issued
by the postings and never changed): the billing team finds a customer's document by number
or license and downloads its PDF, as the customer received it."""

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from billing.documents.pdf import cents_text, document_pdf
from billing.models import BillingDetails, Document
from portal.admin import ReadOnlyAdminMixin


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "number",
        "kind",
        "license",
        "issued_at",
        "total",
        "invoice",
        "emailed_at",
        "pdf",
    ]
    list_filter = ["kind"]
    list_select_related = ["license", "invoice"]
    search_fields = ["=number", "=license__key", "license__name"]
    ordering = ["-issued_at", "-id"]
    show_full_result_count = False

    @admin.display(description="Total")
    def total(self, document: Document) -> str:
        return cents_text(document.total_cents)

    @admin.display(description="PDF")
    def pdf(self, document: Document) -> str:
        url = reverse("admin:billing_document_pdf", args=[document.pk])
        return format_html('<a href="{}">PDF</a>', url)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/pdf/",
                self.admin_site.admin_view(self.pdf_view),
                name="billing_document_pdf",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        document = get_object_or_404(Document.objects.select_related("license", "invoice"), pk=pk)
        response = HttpResponse(document_pdf(document), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{document.number}.pdf"'
        return response


@admin.register(BillingDetails)
class BillingDetailsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["license", "legal_name", "country", "tax_id", "po_number", "updated_at"]
    list_select_related = ["license"]
    search_fields = ["=license__key", "license__name", "legal_name", "=tax_id"]
    ordering = ["license__name"]
