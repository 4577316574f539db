"""Forms of the customer's payment pages."""

from decimal import Decimal
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from billing.money import parse_money
from portal.amounts import DECIMAL_FIELD_MESSAGES, AmountField, CountField

# What the auto top-up's amounts were as DecimalFields: 12 digits, 2 of them decimals.
TOPUP_MAX = Decimal("9999999999.99")


def preset_amounts() -> list[Decimal]:
    return [Decimal(a) for a in settings.PAYMENT_PRESET_AMOUNTS]


class CreditPurchaseForm(forms.Form):
    """A preset amount or a custom one (whole cents, within the configured range: the
    service decides the range, `payments.services.paying.purchase_amount_check`)."""

    preset = forms.ChoiceField(required=True, widget=forms.RadioSelect)
    custom_amount = forms.CharField(required=False, max_length=20)
    # A saved card's id, or empty for the default; the view finds it within the license.
    card = forms.CharField(required=False, max_length=20)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(f"{a:.2f}", f"${a:,.2f}") for a in preset_amounts()]
        preset = cast(forms.ChoiceField, self.fields["preset"])
        preset.choices = [*choices, ("custom", "Other amount")]
        preset.error_messages["required"] = "Choose an amount."
        preset.error_messages["invalid_choice"] = "Choose one of the amounts."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        preset = cleaned.get("preset")
        if preset is None:
            return cleaned
        if preset == "custom":
            text = (cleaned.get("custom_amount") or "").strip()
            if not text:
                self.add_error("custom_amount", "Enter the amount you want to add.")
                return cleaned
            try:
                cleaned["amount"] = parse_money(text)
            except ValueError as exc:
                self.add_error("custom_amount", ValidationError(f"{exc}."))
        else:
            cleaned["amount"] = Decimal(preset)
        return cleaned


class AutoTopupForm(forms.Form):
    # The one parser of typed amounts and counts (portal.amounts): only the digits 0-9.
    enabled = forms.BooleanField(required=False, label="Top up automatically")
    threshold = AmountField(
        places=2, min_value=Decimal("0"), max_value=TOPUP_MAX, allow_zero=True,
        messages=DECIMAL_FIELD_MESSAGES, label="When my balance falls below",
    )  # fmt: skip
    amount = AmountField(
        places=2, min_value=Decimal("0.01"), max_value=TOPUP_MAX,
        messages=DECIMAL_FIELD_MESSAGES, label="Add",
    )  # fmt: skip
    monthly_count = CountField(
        min_value=1, max_value=100, label="At most this many top-ups a month"
    )
    monthly_amount = AmountField(
        places=2, min_value=Decimal("0.01"), max_value=TOPUP_MAX,
        messages=DECIMAL_FIELD_MESSAGES, label="At most this much a month",
    )  # fmt: skip
