"""The billing team's money pages: refund a charge, credit goodwill, record a purchase.

One page, parametrised by `MoneyPage`: each names who may use it (the billing
permissions, checked here; Support gets a 403), what it acts on, its form and the service
that records it. Money only moves through billing's money flows (purchases, refunds, credits); nothing here saves a ledger row.

A purchase paid through a provider goes back to the card through that provider's app,
on its own page (the card refund: payments' admin, built from the same `MoneyPage`): the
app registers where that page is for its purchases (`purchase_refund_page_register`), so
the ledger's "Refund this charge" leads there and billing never calls the provider."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.models import License, User
from billing.credits.approvals import ApprovalResult, credit_approval_request
from billing.credits.limits import credit_approval_limit, credit_needs_approval
from billing.flags.services import flag_open_for_charge, flag_resolve_with_refund
from billing.forms import (
    GoodwillForm,
    PurchaseForm,
    RefundForm,
    apply_application_error,
    new_idempotency_key,
)
from billing.models import ChargeFlag, CreditApproval, LedgerEntry
from billing.money import format_money
from billing.purchases.services import PurchaseResult, purchase_record
from billing.refunds.services import RefundResult, refund_issue, refundable_amount
from portal.exceptions import ApplicationError
from portal.moments import format_local_time


def can_issue_refunds(user: Any) -> bool:
    return user.is_active and user.is_staff and user.has_perm("billing.issue_refund")


def can_record_purchases(user: Any) -> bool:
    return user.is_active and user.is_staff and user.has_perm("billing.record_purchase")


# Where a purchase paid through a provider is refunded to the card, by the prefix of its
# external id: registered by the provider's app (payments: "pi:"), which owns the page.
_purchase_refund_pages: dict[str, Callable[[LedgerEntry], str]] = {}


def purchase_refund_page_register(*, prefix: str, url: Callable[[LedgerEntry], str]) -> None:
    """`url(purchase)` is the admin page that refunds that purchase to the card."""
    _purchase_refund_pages[prefix] = url


def refund_url(entry: LedgerEntry) -> str | None:
    """The page that refunds this entry: a usage charge here (as credit), a purchase paid
    through a provider on that provider's page (to the card); None for anything else."""
    if entry.kind == LedgerEntry.Kind.USAGE:
        return reverse("admin:billing_ledgerentry_refund", args=[entry.pk])
    if entry.kind == LedgerEntry.Kind.PURCHASE:
        for prefix, url in _purchase_refund_pages.items():
            if entry.external_id.startswith(prefix):
                return url(entry)
    return None


@dataclass(frozen=True)
class Target:
    """What a money page acts on: a license, and for a refund the charge."""

    license: License
    entry: LedgerEntry | None = None


@dataclass(frozen=True)
class MoneyPage:
    route: str  # under the ledger admin, with one <int:pk>
    url_name: str
    allowed: Callable[[Any], bool]
    form_class: type[forms.Form]
    load: Callable[[int], Target]
    title: Callable[[Target], str]
    submit: str
    record: Callable[[User, Target, dict[str, Any]], PurchaseResult | RefundResult | ApprovalResult]
    initial: Callable[[Target], dict[str, Any]] = lambda target: {}
    notes: Callable[[Target], list[str]] = lambda target: []
    # Why the page cannot be used for this target now: (message level, text), shown on
    # the entry's page instead of the form; None when it can.
    refusal: Callable[[Target, bool], tuple[int, str] | None] = lambda target, posting: None


def _license(pk: int) -> Target:
    return Target(license=get_object_or_404(License, pk=pk))


def _charge(pk: int) -> Target:
    entry = get_object_or_404(LedgerEntry.objects.select_related("license"), pk=pk)
    return Target(license=entry.license, entry=entry)


def _refund_refusal(target: Target, posting: bool) -> tuple[int, str] | None:
    entry = target.entry
    if entry is None or entry.kind != LedgerEntry.Kind.USAGE:
        # A purchase goes back to the card on its provider's page (refund_url); one
        # recorded by hand (not paid through the portal) is refunded outside the portal.
        return messages.ERROR, "Only a usage charge can be refunded."
    return nothing_left_refusal(target, posting)


def nothing_left_refusal(target: Target, posting: bool) -> tuple[int, str] | None:
    """A refund page's refusal when nothing is left to refund. On a POST the service
    decides (and says how much is left) under the balance lock."""
    if target.entry is not None and not posting and refundable_amount(target.entry) <= 0:
        return messages.WARNING, "Nothing is left to refund on this charge."
    return None


def _refund_notes(target: Target) -> list[str]:
    entry = target.entry
    if entry is None:
        return []
    notes = [
        f"Charge: {format_money(-entry.amount)} for {entry.service} on "
        f"{format_local_time(entry.occurred_at, target.license.timezone)} ({entry.description})",
        f"Still refundable: {format_money(refundable_amount(entry))}",
    ]
    flag = flag_open_for_charge(entry)
    if flag is not None:
        notes.append(
            f"This call is flagged by the customer (flag #{flag.pk}): “{flag.message}”. "
            "This refund answers the flag: the reason below is the answer they read and "
            "are emailed."
        )
    return notes


def _record_refund(user: User, target: Target, data: dict[str, Any]) -> RefundResult:
    """A refund of the target's charge, or a goodwill credit when the target is a license;
    from the flag queue (a `flag` in the form), the refund that resolves that flag."""
    # The flag the form came from (the flag queue's link), else the call's open flag: a
    # refund of a flagged charge answers the flag, wherever it is issued from.
    flag = None
    if target.entry is not None and data.get("flag"):
        flag = get_object_or_404(ChargeFlag, pk=data["flag"], license=target.license)
    elif target.entry is not None:
        flag = flag_open_for_charge(target.entry)
    if target.entry is not None and flag is not None:
        return flag_resolve_with_refund(
            acting_user=user,
            flag=flag,
            charge=target.entry,
            amount=data["amount"],
            reason=data["reason"],
            idempotency_key=data["idempotency_key"],
        )
    return refund_issue(
        acting_user=user,
        license=target.license,
        amount=data["amount"],
        reason=data["reason"],
        idempotency_key=data["idempotency_key"],
        refund_of=target.entry,
    )


def _record_goodwill(user: User, target: Target, data: dict[str, Any]) -> Any:
    """Goodwill up to the approval limit is credited now; above it, asked for approval."""
    if not credit_needs_approval(data["amount"]):
        return _record_refund(user, target, data)
    return credit_approval_request(
        acting_user=user,
        license=target.license,
        kind=CreditApproval.Kind.GOODWILL,
        amount=data["amount"],
        reason=data["reason"],
        idempotency_key=data["idempotency_key"],
    )


def _record_purchase(user: User, target: Target, data: dict[str, Any]) -> Any:
    """A purchase up to the approval limit is recorded now; above it, asked for approval."""
    if not credit_needs_approval(data["amount"]):
        return purchase_record(
            acting_user=user,
            license=target.license,
            amount=data["amount"],
            external_id=data["external_id"],
            description=data["description"],
        )
    return credit_approval_request(
        acting_user=user,
        license=target.license,
        kind=CreditApproval.Kind.PURCHASE,
        amount=data["amount"],
        external_id=data["external_id"],
        description=data["description"],
    )


def _limit_notes(target: Target) -> list[str]:
    return [
        f"Up to {format_money(credit_approval_limit())} is credited at once; more waits for "
        "a second Billing member's approval (Credit approvals)."
    ]


MONEY_PAGES: tuple[MoneyPage, ...] = (
    MoneyPage(
        route="<int:pk>/refund/",
        url_name="billing_ledgerentry_refund",
        allowed=can_issue_refunds,
        form_class=RefundForm,
        load=_charge,
        title=lambda t: "" if t.entry is None else f"Refund charge #{t.entry.pk}",
        submit="Issue refund",
        record=_record_refund,
        initial=lambda t: {
            "amount": refundable_amount(t.entry) if t.entry else None,
            "idempotency_key": new_idempotency_key(),
        },
        notes=_refund_notes,
        refusal=_refund_refusal,
    ),
    MoneyPage(
        route="license/<int:pk>/goodwill/",
        url_name="billing_ledgerentry_goodwill",
        allowed=can_issue_refunds,
        form_class=GoodwillForm,
        load=_license,
        title=lambda t: f"Goodwill credit for {t.license.name}",
        submit="Credit the license",
        record=_record_goodwill,
        initial=lambda t: {"idempotency_key": new_idempotency_key()},
        notes=_limit_notes,
    ),
    MoneyPage(
        route="license/<int:pk>/purchase/",
        url_name="billing_ledgerentry_purchase",
        allowed=can_record_purchases,
        form_class=PurchaseForm,
        load=_license,
        title=lambda t: f"Record a purchase for {t.license.name}",
        submit="Record purchase",
        record=_record_purchase,
        notes=_limit_notes,
    ),
)


def money_page_view(model_admin: admin.ModelAdmin, page: MoneyPage) -> Callable[..., HttpResponse]:
    """The view of one money page: the form, then the service, then the entry it recorded."""

    def view(request: HttpRequest, pk: int) -> HttpResponse:
        if not page.allowed(request.user):
            raise PermissionDenied
        target = page.load(pk)
        posting = request.method == "POST"
        refusal = page.refusal(target, posting)
        if refusal is not None:
            messages.add_message(request, *refusal)
            if target.entry is None:
                return redirect(reverse("admin:accounts_license_change", args=[target.license.pk]))
            return redirect(reverse("admin:billing_ledgerentry_change", args=[target.entry.pk]))
        if posting:
            form = page.form_class(request.POST)
            if form.is_valid():
                if not isinstance(request.user, User):  # the admin lets only staff in
                    raise PermissionDenied
                try:
                    result = page.record(request.user, target, form.cleaned_data)
                except ApplicationError as exc:
                    apply_application_error(form, exc)
                else:
                    if isinstance(result, ApprovalResult):
                        return _requested(request, result)
                    return _recorded(request, result.entry, result.created)
        else:
            initial = page.initial(target)
            if "flag" in page.form_class.base_fields and request.GET.get("flag", "").isdigit():
                initial["flag"] = int(request.GET["flag"])
            form = page.form_class(initial=initial)
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": page.title(target),
            "form": form,
            "license": target.license,
            "entry": target.entry,
            "notes": page.notes(target),
            "submit_label": page.submit,
            "license_url": reverse("admin:accounts_license_change", args=[target.license.pk]),
        }
        return TemplateResponse(request, "admin/billing/money_form.html", context)

    return view


def _requested(request: HttpRequest, result: ApprovalResult) -> HttpResponse:
    approval = result.approval
    if result.created:
        messages.warning(
            request,
            f"Above the {format_money(credit_approval_limit())} limit: request #{approval.pk} "
            f"for {format_money(approval.amount)} waits for a second Billing member's "
            "approval. Nothing is credited until then.",
        )
    else:
        messages.info(request, f"This was already asked for as request #{approval.pk}.")
    return redirect(reverse("admin:billing_creditapproval_change", args=[approval.pk]))


def _recorded(request: HttpRequest, entry: LedgerEntry, created: bool) -> HttpResponse:
    what = entry.get_kind_display().lower()
    if created:
        answered = ChargeFlag.objects.filter(refund=entry).values_list("pk", flat=True).first()
        messages.success(
            request,
            f"Recorded {what} #{entry.pk} of {format_money(entry.amount)}."
            + (f" It answers flag #{answered}; the customer is emailed." if answered else ""),
        )
    else:
        messages.info(
            request, f"This {what} was already recorded as #{entry.pk}; nothing was added."
        )
    return redirect(reverse("admin:billing_ledgerentry_change", args=[entry.pk]))
