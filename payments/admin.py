"""Payments in the admin: read-only for everyone (money moves only through the services);
the events list shows what needs staff attention (intents the portal did not create,
another license's intent, changed amounts, disputes). The billing team's refund of a card
purchase is here too (`CARD_REFUND_PAGE`): a money page like billing's own, reached from
the ledger entry's "Refund this charge" (payments.apps registers where it is)."""

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path

from accounts.models import User
from billing.admin.money import (
    MoneyPage,
    Target,
    can_issue_refunds,
    money_page_view,
    nothing_left_refusal,
)
from billing.forms import RefundForm, new_idempotency_key
from billing.models import LedgerEntry
from billing.money import format_money
from billing.refunds.services import RefundResult, refundable_amount
from payments.models import (
    CARD_PURCHASE_PREFIX,
    Dispute,
    Payment,
    PaymentAccount,
    PaymentRefund,
    SavedCard,
    StripeEvent,
)
from payments.services.refunds import payment_refund_issue
from payments.stripe_client import payments_enabled
from portal.admin import ReadOnlyAdminMixin
from portal.moments import format_local_time


class _SaysWhenOff:
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not payments_enabled():
            messages.warning(
                request,
                "Card payments are off: STRIPE_SECRET_KEY is not set, so Purchase Credits "
                "shows customers how to buy from the billing team (docs/payments.md).",
            )
        return super().changelist_view(request, extra_context)  # type: ignore[misc]


def _card_purchase(pk: int) -> Target:
    """A purchase entry credited from a card payment; 404 for any other entry."""
    entry = get_object_or_404(
        LedgerEntry.objects.select_related("license"),
        pk=pk,
        kind=LedgerEntry.Kind.PURCHASE,
        external_id__startswith=CARD_PURCHASE_PREFIX,
    )
    return Target(license=entry.license, entry=entry)


def _card_refund_notes(target: Target) -> list[str]:
    entry = target.entry
    if entry is None:
        return []
    return [
        f"Purchase: {format_money(entry.amount)} on "
        f"{format_local_time(entry.occurred_at, target.license.timezone)} ({entry.description}); "
        "the refund goes back to the customer's card and takes the credit away.",
        f"Still refundable: {format_money(refundable_amount(entry))}",
    ]


def _record_card_refund(user: User, target: Target, data: dict[str, Any]) -> RefundResult:
    if target.entry is None:
        raise ValueError("a card refund needs its purchase")
    return payment_refund_issue(
        acting_user=user,
        purchase=target.entry,
        amount=data["amount"],
        reason=data["reason"],
        idempotency_key=data["idempotency_key"],
    )


# Refund a card purchase: through Stripe, then the ledger (payments.services). Its <pk> is
# the purchase's ledger entry, as on billing's refund page of a usage charge.
CARD_REFUND_PAGE = MoneyPage(
    route="purchase/<int:pk>/refund/",
    url_name="payments_card_refund",
    allowed=can_issue_refunds,
    form_class=RefundForm,
    load=_card_purchase,
    title=lambda t: "" if t.entry is None else f"Refund purchase #{t.entry.pk} to the card",
    submit="Issue refund",
    record=_record_card_refund,
    initial=lambda t: {
        "amount": refundable_amount(t.entry) if t.entry else None,
        "idempotency_key": new_idempotency_key(),
    },
    notes=_card_refund_notes,
    refusal=nothing_left_refusal,
)


@admin.register(Payment)
class PaymentAdmin(_SaysWhenOff, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "license",
        "amount",
        "status",
        "source",
        "intent_id",
        "ledger_entry",
        "receipt_number",
        "created_at",
    )
    list_filter = ("status", "source")
    search_fields = ("intent_id", "receipt_number", "license__key", "license__name")
    raw_id_fields = ("license", "ledger_entry", "created_by")
    date_hierarchy = "created_at"

    def get_urls(self) -> list[Any]:
        page = CARD_REFUND_PAGE
        view = self.admin_site.admin_view(money_page_view(self, page))
        return [path(page.route, view, name=page.url_name), *super().get_urls()]


@admin.register(StripeEvent)
class StripeEventAdmin(_SaysWhenOff, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "event_id",
        "type",
        "received_at",
        "processed_at",
        "needs_attention",
        "outcome",
        "license",
    )
    list_filter = ("needs_attention", "type")
    search_fields = ("event_id",)
    raw_id_fields = ("license",)


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "dispute_id",
        "license",
        "payment",
        "amount_cents",
        "reason",
        "status",
        "created_at",
        "closed_at",
    )
    list_filter = ("status",)
    raw_id_fields = ("license", "payment")


@admin.register(PaymentAccount)
class PaymentAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "license",
        "stripe_customer_id",
        "auto_topup_enabled",
        "auto_topup_threshold",
        "auto_topup_amount",
        "auto_topup_failures",
        "auto_topup_disabled_reason",
    )
    list_filter = ("auto_topup_enabled",)
    raw_id_fields = ("license",)


@admin.register(SavedCard)
class SavedCardAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "license",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
        "removed_at",
    )
    raw_id_fields = ("license",)


@admin.register(PaymentRefund)
class PaymentRefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("payment", "license", "amount", "refund_id", "ledger_entry", "created_at")
    raw_id_fields = ("license", "payment", "ledger_entry")
