"""Documents: the license's invoices and credit notes, each as a PDF, and a year's as one
ZIP (everyone on the license); and the billing details they are made out to, which owners
keep on a page of their own (audited; the next document issued copies them)."""

import io
import zipfile
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views import View
from django.views.generic import FormView, TemplateView

from accounts.mixins import LicenseMixin
from billing.documents.details import FIELDS, billing_details_get, billing_details_save
from billing.documents.pdf import document_facts, document_pdf
from billing.models import Document
from dashboard.forms import BillingDetailsForm
from portal.exceptions import ApplicationError


class BillingDetailsView(LicenseMixin, FormView):
    """An owner keeps who the license's documents are made out to."""

    template_name = "dashboard/documents/billing_details.html"
    form_class = BillingDetailsForm
    owner_only = True
    extra_context = {"nav_current": "billing"}

    def get_initial(self) -> dict[str, Any]:
        details = billing_details_get(self.license)
        return {field: getattr(details, field) for field in FIELDS}

    def form_valid(self, form: BillingDetailsForm) -> HttpResponse:
        try:
            billing_details_save(
                acting_user=self.user,
                license=self.license,
                **{field: form.cleaned_data[field] for field in FIELDS},
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self.form_invalid(form)
        messages.success(
            self.request, "Billing details saved. Documents issued from now on show them."
        )
        return redirect("dashboard:billing_details", license_id=self.license.public_id)


def _documents(license: Any) -> Any:
    return (
        Document.objects.for_license(license)
        .select_related("license", "invoice")
        .prefetch_related("credit_notes")
        .order_by("-issued_at", "-id")
    )


class DocumentListView(LicenseMixin, TemplateView):
    template_name = "dashboard/documents/list.html"
    extra_context = {"nav_current": "billing"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        documents = list(_documents(self.license))
        context["documents"] = [(d, document_facts(d)) for d in documents]
        context["years"] = sorted(
            {d.issued_at.astimezone(self.license.tzinfo).year for d in documents}, reverse=True
        )
        context["is_owner"] = self.role == "owner"
        return context


class DocumentPdfView(LicenseMixin, View):
    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        document = get_object_or_404(_documents(self.license), number=kwargs["number"])
        response = HttpResponse(document_pdf(document), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{document.number}.pdf"'
        return response


class DocumentZipView(LicenseMixin, View):
    """A year's documents (the license's local year of issue) as one ZIP of PDFs."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        year = kwargs["year"]
        documents = [
            d
            for d in _documents(self.license)
            if d.issued_at.astimezone(self.license.tzinfo).year == year
        ]
        if not documents:
            raise Http404("No documents that year.")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for document in reversed(documents):
                archive.writestr(f"{document.number}.pdf", document_pdf(document))
        response = HttpResponse(buffer.getvalue(), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="documents-{year}.zip"'
        return response
