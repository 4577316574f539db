"""Billing details: an owner saves who the license's documents are made out to (audited,
like the other owner settings); each document copies them when it is issued."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from billing.documents.models import BillingDetails
from billing.documents.taxid import COUNTRIES, tax_id_check
from portal.exceptions import ApplicationError

FIELDS = ("legal_name", "address", "country", "tax_id", "po_number")


def billing_details_get(license: License) -> BillingDetails:
    """The license's details, or empty ones (unsaved) when none were saved yet."""
    return BillingDetails.objects.for_license(license).first() or BillingDetails(license=license)


def billing_details_snapshot(license: License) -> dict[str, str]:
    """What a document issued now says it is billed to."""
    details = billing_details_get(license)
    snapshot = {field: getattr(details, field) for field in FIELDS}
    snapshot["country_name"] = COUNTRIES.get(details.country, details.country)
    return snapshot


@transaction.atomic
def billing_details_save(
    *,
    acting_user: User,
    license: License,
    legal_name: str,
    address: str,
    country: str,
    tax_id: str,
    po_number: str,
) -> BillingDetails:
    """Save the license's billing details. The country is an ISO code offered on the page;
    the tax ID has the format of that country's (ApplicationError naming the field)."""
    country = (country or "").strip().upper()
    if country and country not in COUNTRIES:
        raise ApplicationError("Country: choose one from the list.", field="country")
    new: dict[str, Any] = {
        "legal_name": (legal_name or "").strip(),
        "address": (address or "").strip(),
        "country": country,
        "tax_id": tax_id_check(country=country, tax_id=tax_id),
        "po_number": (po_number or "").strip(),
    }
    details = BillingDetails.objects.select_for_update().filter(license=license).first()
    if details is None:
        details = BillingDetails(license=license)
    changes = {
        field: [getattr(details, field), value]
        for field, value in new.items()
        if getattr(details, field) != value
    }
    if not changes and not details._state.adding:
        return details
    for field, value in new.items():
        setattr(details, field, value)
    details.updated_at = timezone.now()
    details.updated_by = acting_user
    details.save()
    audit_record(
        actor=acting_user,
        license=license,
        action="billing_details.update",
        target=f"license {license.key}",
        changes=changes,
    )
    return details
