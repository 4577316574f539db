"""Forms of the customer's payment pages."""

from decimal import Decimal
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from billing.money import parse_money


def preset_amounts() -> list[Decimal]:
    return [Decimal(a) for a in settings.PAYMENT_PRESET_AMOUNTS]


class CreditPurchaseForm(forms.Form):
    """A preset amount or a custom one (whole cents, within the configured range: the
    service decides the range, `payments.services.purchase_amount_check`)."""

    preset = forms.ChoiceField(required=True, widget=forms.RadioSelect)
    custom_amount = forms.CharField(required=False, max_length=20)

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
    enabled = forms.BooleanField(required=False, label="Top up automatically")
    threshold = forms.DecimalField(
        min_value=Decimal("0"), max_digits=12, decimal_places=2, label="When my balance falls below"
    )
    amount = forms.DecimalField(
        min_value=Decimal("0.01"), max_digits=12, decimal_places=2, label="Add"
    )
    monthly_count = forms.IntegerField(
        min_value=1, max_value=100, label="At most this many top-ups a month"
    )
    monthly_amount = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        label="At most this much a month",
    )
