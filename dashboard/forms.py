"""Forms of the customer pages: the history download's filters and the alert settings."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import License, Membership
from billing.models import LedgerEntry, Service
from billing.money import MONEY_MAX, MONEY_PLACES
from billing.transactions import Cursor
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


class ApiKeyForm(VisibleTextFormMixin, forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. “billing sync”.")
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional: the key stops working at the end of this day (the license's time).",
    )

    def expires_at(self, license: License) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=license.tzinfo)


class TransactionFilterForm(forms.Form):
    """All transactions: ?from&to (local days)&type&service&endpoint&status&q, and the page."""

    type = forms.ChoiceField(required=False, choices=[("", "All types"), *LedgerEntry.Kind.choices])
    service = forms.ChoiceField(required=False, choices=[("", "All services"), *Service.choices])
    endpoint = forms.CharField(required=False, max_length=200)
    status = forms.CharField(required=False, max_length=32)
    q = forms.CharField(required=False, max_length=200, label="Search")
    before = forms.CharField(required=False, widget=forms.HiddenInput)
    after = forms.CharField(required=False, widget=forms.HiddenInput)
    oldest = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("from", "to"):
            self.fields[name] = forms.DateField(
                required=False,
                input_formats=["%Y-%m-%d"],
                widget=forms.DateInput(attrs={"type": "date"}),
                error_messages={"invalid": "must be a date written YYYY-MM-DD"},
            )
        self.order_fields(["q", "from", "to", "type", "service", "endpoint", "status"])

    def _cursor(self, name: str) -> Cursor | None:
        text = self.cleaned_data.get(name) or ""
        if not text:
            return None
        try:
            return Cursor.parse(text)
        except ValueError as exc:
            raise ValidationError({name: "is not a page of this list"}) from exc

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        cleaned["before_cursor"] = self._cursor("before")
        cleaned["after_cursor"] = self._cursor("after")
        return cleaned


class ChargeFlagForm(VisibleTextFormMixin, forms.Form):
    message = forms.CharField(
        label="What looks wrong with this charge?",
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 1000}),
        max_length=1000,
    )


class UsageExplorerForm(forms.Form):
    """The usage explorer: ?from&to (local days)&granularity=day|month&group_by=service|endpoint.

    Only the shape of each value is checked here; which ranges can be read is the
    selector's rule (billing.selectors.usage_range_check), the same for the API.
    """

    granularity = forms.ChoiceField(
        required=False,
        choices=[("day", "By day"), ("month", "By month")],
        label="Group by time",
        error_messages={"invalid_choice": "must be day or month"},
    )
    group_by = forms.ChoiceField(
        required=False,
        choices=[("service", "By service"), ("endpoint", "By endpoint")],
        label="Group by",
        error_messages={"invalid_choice": "must be service or endpoint"},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("from", "to"):
            self.fields[name] = forms.DateField(
                required=False,
                input_formats=["%Y-%m-%d"],
                label=name.capitalize(),
                widget=forms.DateInput(attrs={"type": "date"}),
                error_messages={"invalid": "must be a date written YYYY-MM-DD"},
            )
        self.order_fields(["from", "to", "granularity", "group_by"])
