"""Forms of the customer pages: transaction filters (All transactions and the history
download), the usage explorer, the alert settings, API keys and flags."""

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import License, Membership
from api.models import WebhookEndpoint
from billing.charges.selectors import LOCAL_DATE_MAX, LOCAL_DATE_MIN
from billing.documents.taxid import COUNTRIES
from billing.history.transactions import Cursor, TransactionFilter
from billing.history.types import TRANSACTION_TYPE_CHOICES, TRANSACTION_TYPES
from billing.models import Service
from billing.money import MONEY_MAX, MONEY_PLACES
from portal.amounts import DECIMAL_FIELD_MESSAGES, AmountField
from portal.text import VisibleTextFormMixin

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
        members = cast(forms.MultipleChoiceField, self.fields["alert_members"])
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


class WebhookEndpointForm(VisibleTextFormMixin, forms.Form):
    """A webhook endpoint: its URL (checked by api.services) and the events it wants."""

    url = forms.CharField(
        max_length=500,
        label="Endpoint URL",
        help_text="Where the portal POSTs events, e.g. https://example.com/hooks/portal.",
        widget=forms.URLInput(attrs={"placeholder": "https://", "autocomplete": "url"}),
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEndpoint.Event.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Events",
        error_messages={"required": "Choose at least one event."},
    )


def local_date_field(*, invalid: str, label: str | None = None) -> forms.DateField:
    """An optional ?from / ?to: a local day written YYYY-MM-DD, picked with a date input.
    ("from" is a Python keyword, so forms add these in __init__, not as attributes.)"""
    return forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        label=label,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": invalid},
    )


class TransactionFilterForm(forms.Form):
    """All transactions: ?from&to (local days)&type&service&endpoint&status&q, and the page.
    The history download takes the same filters (the search and the page aside)."""

    type = forms.ChoiceField(
        required=False,
        choices=[("", "All types"), *TRANSACTION_TYPE_CHOICES],
        error_messages={
            "invalid_choice": "must be one of " + ", ".join(TRANSACTION_TYPES),
        },
    )
    service = forms.ChoiceField(
        required=False,
        choices=[("", "All services"), *Service.choices],
        error_messages={"invalid_choice": "must be one of " + ", ".join(Service.values)},
    )
    endpoint = forms.CharField(required=False, max_length=200)
    status = forms.CharField(required=False, max_length=32)
    q = forms.CharField(required=False, max_length=200, label="Search")
    before = forms.CharField(required=False, widget=forms.HiddenInput)
    after = forms.CharField(required=False, widget=forms.HiddenInput)
    oldest = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("from", "to"):
            self.fields[name] = local_date_field(invalid="must be a date written YYYY-MM-DD")
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
        for name in ("from", "to"):
            value = cleaned.get(name)
            if value and not LOCAL_DATE_MIN <= value <= LOCAL_DATE_MAX:
                self.add_error(
                    name,
                    f"must be between {LOCAL_DATE_MIN.isoformat()} and "
                    f"{LOCAL_DATE_MAX.isoformat()}",
                )
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end and start > end:
            self.add_error("to", "must be on or after the 'from' date")
        return cleaned

    def transaction_filter(self, license: License) -> TransactionFilter:
        """The filters as billing.history.transactions reads them (call once the form is valid)."""
        data = self.cleaned_data
        return TransactionFilter.for_local_dates(
            license,
            date_from=data.get("from"),
            date_to=data.get("to"),
            kind=data.get("type") or "",
            service=data.get("service") or "",
            endpoint=data.get("endpoint") or "",
            status=data.get("status") or "",
        )

    def error_message(self, doing: str) -> str:
        """ "Could not <doing>: 'from' must be a date written YYYY-MM-DD." """
        parts = [f"'{name}' {error}" for name, errors in self.errors.items() for error in errors]
        return f"Could not {doing}: " + "; ".join(parts) + "."


class ChargeFlagForm(VisibleTextFormMixin, forms.Form):
    message = forms.CharField(
        label="What looks wrong with this charge?",
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 1000}),
        max_length=1000,
    )


class UsageExplorerForm(forms.Form):
    """The usage explorer: ?from&to (local days)&granularity=day|month&group_by=service|endpoint.

    Only the shape of each value is checked here; which ranges can be read is the
    selector's rule (billing.charges.selectors.usage_range_check), the same for the API.
    """

    granularity = forms.ChoiceField(
        required=False,
        choices=[("day", "By day"), ("month", "By month")],
        label="Group by time",
        error_messages={"invalid_choice": "'granularity' must be day or month."},
    )
    group_by = forms.ChoiceField(
        required=False,
        choices=[("service", "By service"), ("endpoint", "By endpoint")],
        label="Group by",
        error_messages={"invalid_choice": "'group_by' must be service or endpoint."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("from", "to"):
            self.fields[name] = local_date_field(
                invalid=f"'{name}' must be a date written YYYY-MM-DD.", label=name.capitalize()
            )
        self.order_fields(["from", "to", "granularity", "group_by"])
        # Each message names the parameter, like the selector's (and the API's) own.


class SpendLimitsForm(forms.Form):
    """An owner's spend limits (billing.limits.services.spend_limit_set): how far below zero
    the gate may let spending go (within the billing team's approval), and a monthly cap."""

    overdraft = AmountField(
        label="Allow spending below $0.00 by up to",
        required=False,
        allow_zero=True,
        min_value=Decimal("0"),
        max_value=MONEY_MAX,
        places=MONEY_PLACES,
        help_text="0 stops at $0.00. More than that needs the billing team's approval.",
    )
    monthly_cap = AmountField(
        label="Monthly spending cap",
        required=False,
        max_value=MONEY_MAX,
        places=MONEY_PLACES,
        help_text="Usage in a calendar month of your time zone; leave it empty for no cap.",
    )


class BillingDetailsForm(forms.Form):
    """Who the license's documents are made out to (billing.documents.details checks the tax
    ID's format for the country)."""

    legal_name = forms.CharField(label="Legal name", max_length=200, required=False)
    address = forms.CharField(
        label="Address", max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    country = forms.ChoiceField(
        label="Country",
        required=False,
        choices=[("", "—"), *sorted(COUNTRIES.items(), key=lambda item: item[1])],
    )
    tax_id = forms.CharField(
        label="Tax ID (VAT number)",
        max_length=40,
        required=False,
        help_text="With its country prefix for an EU or UK VAT number, e.g. DE123456789.",
    )
    po_number = forms.CharField(label="PO number or note", max_length=200, required=False)
