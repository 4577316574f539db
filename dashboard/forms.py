"""Forms of the customer pages: the history download's filters and the alert settings."""

from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import Membership
from billing.models import LedgerEntry
from billing.money import MONEY_MAX, MONEY_PLACES
from portal.amounts import DECIMAL_FIELD_MESSAGES, AmountField
from portal.text import VisibleTextFormMixin

HISTORY_MIN_DATE = date(1970, 1, 1)
HISTORY_MAX_DATE = date(9998, 12, 31)


class HistoryFilterForm(forms.Form):
    """?from=YYYY-MM-DD&to=YYYY-MM-DD&type=usage, every one optional."""

    type = forms.ChoiceField(
        required=False, choices=[("", "all"), *LedgerEntry.Kind.choices], label="type"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these fields are declared here, not as attributes.
        for name in ("from", "to"):
            self.fields[name] = forms.DateField(
                required=False,
                input_formats=["%Y-%m-%d"],
                label=name,
                error_messages={"invalid": "must be a date written YYYY-MM-DD"},
            )
        self.order_fields(["from", "to", "type"])
        self.fields["type"].error_messages["invalid_choice"] = (
            "must be one of purchase, usage or refund"
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("from", "to"):
            value = cleaned.get(name)
            if value and not HISTORY_MIN_DATE <= value <= HISTORY_MAX_DATE:
                self.add_error(
                    name,
                    f"must be between {HISTORY_MIN_DATE.isoformat()} and "
                    f"{HISTORY_MAX_DATE.isoformat()}",
                )
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end and start > end:
            self.add_error("to", "must be on or after the 'from' date")
        return cleaned

    def error_message(self) -> str:
        parts = [f"'{name}' {error}" for name, errors in self.errors.items() for error in errors]
        return "Could not download the history: " + "; ".join(parts) + "."

    def filter_kwargs(self) -> dict:
        return {
            "date_from": self.cleaned_data.get("from"),
            "date_to": self.cleaned_data.get("to"),
            "kind": self.cleaned_data.get("type") or None,
        }


MAX_EXTRA_RECIPIENTS = 10


class LicenseAlertSettingsForm(VisibleTextFormMixin, forms.Form):
    low_balance_threshold = AmountField(
        label="Low-balance threshold ($)",
        places=MONEY_PLACES,
        max_value=MONEY_MAX,
        min_value=Decimal("0"),
        allow_zero=True,
        messages=DECIMAL_FIELD_MESSAGES,
        help_text="The balance shows red and alerts go out below this amount. Default $1.00.",
    )
    alert_members = forms.MultipleChoiceField(
        label="Logins who get alerts",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    extra_emails = forms.CharField(
        label="Extra addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=f"One email address per line, at most {MAX_EXTRA_RECIPIENTS}.",
    )

    def __init__(self, *args: Any, memberships: list[Membership], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        members = self.fields["alert_members"]
        assert isinstance(members, forms.MultipleChoiceField)
        members.choices = [(str(m.pk), m.user.email) for m in memberships]

    def clean_extra_emails(self):
        lines = [line.strip() for line in self.cleaned_data["extra_emails"].splitlines()]
        emails: list[str] = []
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                validate_email(line)
            except ValidationError as exc:
                raise ValidationError(
                    f"line {number} ('{line[:80]}') is not an email address."
                ) from exc
            if line.lower() not in emails:
                emails.append(line.lower())
        if len(emails) > MAX_EXTRA_RECIPIENTS:
            raise ValidationError(f"At most {MAX_EXTRA_RECIPIENTS} extra addresses.")
        return emails
