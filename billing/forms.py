"""Forms of the billing team (admin) and the customer's history download filters."""

import re
import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.models import Price
from billing.money import MONEY_MAX, MONEY_PLACES, PRICE_MAX_DIGITS, PRICE_PLACES
from billing.prices.services import price_validate
from portal.amounts import AmountField, CountField
from portal.exceptions import ApplicationError
from portal.text import VisibleTextFormMixin

PRICE_MAX = Decimal(10) ** (PRICE_MAX_DIGITS - PRICE_PLACES) - Decimal(1).scaleb(-PRICE_PLACES)
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,100}$")


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class MoneyField(AmountField):
    """An amount in dollars, exact: at most 6 decimal places, more than zero, never rounded
    (portal.amounts.parse_amount: a comma only between thousands)."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text", "Dollars, at most 6 decimal places (e.g. 12.50 or 1,000.50)."
        )
        super().__init__(places=MONEY_PLACES, max_value=MONEY_MAX, **kwargs)


class _IdempotentForm(VisibleTextFormMixin, forms.Form):
    """Carries the key that makes a double submit record one entry, not two."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput)

    def clean_idempotency_key(self):
        key = self.cleaned_data["idempotency_key"].strip()
        if not IDEMPOTENCY_KEY_RE.match(key):
            raise ValidationError("This form is damaged or expired; open it again.")
        return key


class RefundForm(_IdempotentForm):
    amount = MoneyField(label="Amount to refund")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Why this refund is issued, written for the customer: they read it on the "
        "transaction's page (and, for a flagged charge, as the answer to their flag).",
    )
    # The customer's flag this refund answers (from the flag queue); resolved with it.
    flag = CountField(required=False, widget=forms.HiddenInput)


class GoodwillForm(_IdempotentForm):
    amount = MoneyField(label="Amount to credit")
    reason = RefundForm.base_fields["reason"]


class PurchaseForm(VisibleTextFormMixin, forms.Form):
    amount = MoneyField(label="Amount purchased")
    external_id = forms.CharField(
        label="Payment reference",
        max_length=200,
        help_text="The payment's id (invoice, transfer, processor id). The same reference "
        "twice records one purchase.",
    )
    description = forms.CharField(
        max_length=500, required=False, help_text="Shown to the customer. Optional."
    )


def apply_application_error(form: forms.BaseForm, exc: ApplicationError) -> None:
    """Show a service's refusal on the field it names (or above the form)."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


class PriceForm(forms.ModelForm):
    unit_price = AmountField(
        places=PRICE_PLACES,
        max_value=PRICE_MAX,
        allow_zero=True,
        help_text="Dollars per token or per image, e.g. 0.000000075 for $0.075 per 1M "
        "tokens, 0.0001 per image.",
    )
    effective_from = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        help_text="When the price starts (staff time zone). Leave empty to start now. "
        "Never in the past: usage already charged keeps the price it was charged at.",
    )

    class Meta:
        model = Price
        fields = ["service", "unit_price", "effective_from"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        now = timezone.now()
        try:
            price_validate(
                service=cleaned["service"],
                unit_price=cleaned["unit_price"],
                effective_from=cleaned.get("effective_from") or now,
                now=now,
            )
        except ApplicationError as exc:
            apply_application_error(self, exc)
        return cleaned


# --- customer history filters -----------------------------------------------------------

# Dates outside these cannot be turned into moments in every timezone; nobody needs them.
