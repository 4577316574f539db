"""The customer's payment pages: Purchase Credits (with a card, or how to buy), the payment's
page, saved cards, auto top-up, billing history and receipts. Under /l/<license>/ like every
customer page (LicenseMixin: a stranger gets a 404); the money is moved by payments.services."""

import logging
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views import View
from django.views.generic import FormView, TemplateView

from accounts.mixins import LicenseMixin
from billing.history.transactions import Cursor
from billing.ledger.selectors import balance_get
from billing.money import format_money, quantize_money
from payments import selectors
from payments.autotopup import auto_topup_month_used, auto_topup_settings_update
from payments.forms import AutoTopupForm, CreditPurchaseForm, preset_amounts
from payments.models import Payment, SavedCard
from payments.receipts import receipt_facts, receipt_pdf
from payments.services.cards import (
    account_get,
    card_default_set,
    card_remove,
    card_save,
    card_setup_start,
    default_card,
)
from payments.services.paying import payment_refresh, payment_start, purchase_amount_check
from payments.stripe_client import PaymentProviderError, payments_enabled
from portal.exceptions import ApplicationError

logger = logging.getLogger(__name__)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def stripe_csp() -> dict[str, list[str]]:
    """What a page that loads Stripe.js adds to the CSP: its script, the API it calls and
    the frames it opens (card fields, 3-D Secure) - exactly those origins, from settings."""
    js = _origin(settings.STRIPE_JS_URL)
    api = _origin(settings.STRIPE_API_BASE)
    frames = sorted({js, *settings.STRIPE_FRAME_ORIGINS})
    return {"script-src": [js], "connect-src": sorted({api, js}), "frame-src": frames}


class _PaymentsOnGate:
    """After LicenseMixin has resolved the license (a stranger gets its 404 first):
    without card payments configured, back to the "contact billing" page."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not payments_enabled():
            return redirect("dashboard:purchase", license_id=kwargs["license_id"])
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class StripePageMixin(LicenseMixin, _PaymentsOnGate):
    """A page that needs card payments configured; without them, the dashboard's
    "contact billing" page. Loads Stripe.js under the CSP above."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)
        response._csp_update = stripe_csp()  # type: ignore[attr-defined]
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["stripe_js_url"] = settings.STRIPE_JS_URL
        context["stripe_publishable_key"] = settings.STRIPE_PUBLISHABLE_KEY
        context["nav_current"] = "purchase"
        return context


class CreditPurchaseView(LicenseMixin, TemplateView):
    """ "Purchase Credits": the payment page when PURCHASE_URL is set, otherwise how to buy."""

    template_name = "dashboard/purchase.html"

    def dispatch(self, request, *args, **kwargs):
        # With Stripe configured (and no outside payment page), customers pay by card here.
        if not settings.PURCHASE_URL and payments_enabled():
            return CardPurchaseView.as_view()(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        if settings.PURCHASE_URL:
            return redirect(settings.PURCHASE_URL)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["balance"] = balance_get(self.license)
        context["support_email"] = settings.SUPPORT_EMAIL
        return context


class CardPurchaseView(StripePageMixin, FormView):
    """Purchase Credits: an amount, the card (saved, or entered with Stripe.js and saved
    through a SetupIntent), then the server creates and confirms the PaymentIntent."""

    template_name = "dashboard/payments/card_purchase.html"
    form_class = CreditPurchaseForm

    def get_initial(self) -> dict[str, Any]:
        presets = preset_amounts()
        middle = presets[1] if len(presets) > 1 else presets[0]
        return {"preset": f"{middle:.2f}"}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        balance = balance_get(self.license).balance
        form = context["form"]
        chosen = form.data.get("preset") if form.is_bound else form.initial.get("preset")
        # Only one of the offered amounts (Decimal() would read "١٠" as 10).
        offered = {f"{a:.2f}" for a in preset_amounts()}
        after = quantize_money(balance + Decimal(chosen)) if chosen in offered else None
        context.update(
            balance=balance,
            balance_after=after,
            pay_label=f"Pay {format_money(Decimal(chosen), 2)}" if after is not None else "Pay",
            card=default_card(self.license),
            cards=selectors.saved_cards(self.license),
            chosen_card=form.data.get("card", "") if form.is_bound else "",
            presets=preset_amounts(),
            min_amount=settings.PAYMENT_MIN_AMOUNT,
            max_amount=settings.PAYMENT_MAX_AMOUNT,
            setup_url=reverse(
                "dashboard:card_setup", kwargs={"license_id": self.license.public_id}
            ),
            save_url=reverse("dashboard:card_save", kwargs={"license_id": self.license.public_id}),
        )
        return context

    def form_valid(self, form: CreditPurchaseForm) -> HttpResponse:
        card = None
        if form.cleaned_data.get("card") == "new":
            # The browser saves a new card before submitting; here it did not (no script).
            form.add_error(None, "Enter the new card, or choose a saved one.")
            return self.form_invalid(form)
        if form.cleaned_data.get("card", "").isdigit():
            card = get_object_or_404(
                SavedCard.objects.for_license(self.license).filter(removed_at__isnull=True),
                pk=form.cleaned_data["card"],
            )
        try:
            payment = payment_start(
                license=self.license,
                acting_user=self.user,
                amount=form.cleaned_data["amount"],
                card=card,
            )
        except ApplicationError as exc:
            form.add_error("custom_amount" if exc.field == "amount" else None, exc.message)
            return self.form_invalid(form)
        return redirect("dashboard:payment", license_id=self.license.public_id, pk=payment.pk)


class CardSetupView(StripePageMixin, View):
    """POST: a SetupIntent's client secret for Stripe.js (confirmCardSetup); from the
    purchase page the amount is checked first."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "preset" in request.POST:
            # From the purchase page: a refused amount starts nothing and saves no card.
            form = CreditPurchaseForm(request.POST)
            if not form.is_valid() or "amount" not in form.cleaned_data:
                errors = [str(e) for field in form.errors.values() for e in field]
                return JsonResponse({"error": " ".join(errors) or "Check the amount."}, status=400)
            try:
                purchase_amount_check(form.cleaned_data["amount"])
            except ApplicationError as exc:
                return JsonResponse({"error": exc.message}, status=400)
        try:
            setup = card_setup_start(license=self.license, acting_user=self.user)
        except PaymentProviderError as exc:
            return JsonResponse({"error": exc.message}, status=502)
        return JsonResponse({"client_secret": setup["client_secret"]})


class CardSaveView(StripePageMixin, View):
    """POST setup_intent=<id>: keep the card the browser just confirmed."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        setup_intent_id = request.POST.get("setup_intent", "")
        try:
            card = card_save(
                license=self.license, acting_user=self.user, setup_intent_id=setup_intent_id
            )
        except (ApplicationError, PaymentProviderError) as exc:
            return JsonResponse({"error": getattr(exc, "message", str(exc))}, status=400)
        return JsonResponse({"card": card.label, "id": card.pk})


class PaymentDetailView(StripePageMixin, TemplateView):
    """After paying: "processing" until the credit lands, then the new balance; finishes
    3-D Secure in the browser (confirmCardPayment) when the bank asks for it."""

    template_name = "dashboard/payments/payment.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        payment = selectors.payment_get(license=self.license, pk=kwargs["pk"])
        if payment.status not in (Payment.Status.SUCCEEDED, Payment.Status.FAILED):
            payment = payment_refresh(payment=payment)
        context.update(
            payment=payment,
            balance=balance_get(self.license).balance,
            status_url=reverse(
                "dashboard:payment_status",
                kwargs={"license_id": self.license.public_id, "pk": payment.pk},
            ),
        )
        return context


class PaymentStatusView(StripePageMixin, View):
    """GET: the payment's status (asking Stripe while it is open); the payment page polls it
    and posts here after 3-D Secure."""

    def _answer(self, pk: int) -> JsonResponse:
        payment = selectors.payment_get(license=self.license, pk=pk)
        payment = payment_refresh(payment=payment)
        return JsonResponse({"status": payment.status, "message": payment.failure_message})

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._answer(kwargs["pk"])

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._answer(kwargs["pk"])


class BillingHistoryView(LicenseMixin, TemplateView):
    """The license's money in and out but usage: purchases (by card, auto top-up or billing),
    refunds to the card (each with the purchase it reverses), credits and expiries, newest
    first, each with its document (invoice, credit note) where it has one."""

    template_name = "dashboard/payments/history.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            before = (
                Cursor.parse(self.request.GET["before"]) if "before" in self.request.GET else None
            )
        except ValueError:
            raise Http404("Not a position in the billing history.") from None
        context["page"] = selectors.billing_history_page(
            self.license, before=before, size=selectors.BILLING_HISTORY_PAGE
        )
        context["is_first_page"] = before is None
        context["nav_current"] = "purchase"
        return context


class ReceiptView(LicenseMixin, TemplateView):
    template_name = "dashboard/payments/receipt.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        payment = selectors.receipt_get(license=self.license, entry_id=kwargs["entry_id"])
        context.update(payment=payment, receipt=receipt_facts(payment))
        return context


class ReceiptPdfView(LicenseMixin, View):
    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        payment = selectors.receipt_get(license=self.license, entry_id=kwargs["entry_id"])
        response = HttpResponse(receipt_pdf(payment), content_type="application/pdf")
        response["Content-Disposition"] = (
            f'attachment; filename="receipt-{payment.receipt_number}.pdf"'
        )
        return response


class SavedCardListView(StripePageMixin, TemplateView):
    """Saved cards: everyone sees them; owners make one the default or remove one."""

    template_name = "dashboard/payments/cards.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["cards"] = selectors.saved_cards(self.license)
        context["is_owner"] = self.role == "owner"
        license_id = self.license.public_id
        context["setup_url"] = reverse("dashboard:card_setup", kwargs={"license_id": license_id})
        context["save_url"] = reverse("dashboard:card_save", kwargs={"license_id": license_id})
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if self.role != "owner":
            messages.error(request, "Only an owner of this license can change its cards.")
            return redirect("dashboard:cards", license_id=self.license.public_id)
        card = get_object_or_404(
            SavedCard.objects.for_license(self.license).filter(removed_at__isnull=True),
            pk=request.POST.get("card") or 0,
        )
        action = request.POST.get("action")
        if action == "remove" and request.POST.get("confirm") != "yes":
            return self._remove_confirm(card)
        try:
            if action == "remove":
                card_remove(license=self.license, acting_user=self.user, card=card)
                messages.success(request, f"{card.label} was removed.")
            else:
                card_default_set(license=self.license, acting_user=self.user, card=card)
                messages.success(request, f"{card.label} is now the default card.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("dashboard:cards", license_id=self.license.public_id)

    def _remove_confirm(self, card: SavedCard) -> HttpResponse:
        """The step before removing: names the card and what auto top-up does without it."""
        account = account_get(self.license)
        others = [c for c in selectors.saved_cards(self.license) if c.pk != card.pk]
        context = self.get_context_data(
            card=card,
            auto_topup_on=account.auto_topup_enabled,
            next_default=others[0] if card.is_default and others else None,
            last_card=not others,
        )
        return self.response_class(
            request=self.request,
            template="dashboard/payments/card_remove.html",
            context=context,
            using=self.template_engine,
        )


class AutoTopupView(StripePageMixin, FormView):
    """Owners: "when my balance falls below $X, add $Y", with the monthly caps."""

    template_name = "dashboard/payments/auto_topup.html"
    form_class = AutoTopupForm
    owner_only = True

    def get_initial(self) -> dict[str, Any]:
        account = account_get(self.license)
        cents = Decimal("0.01")
        return {
            "enabled": account.auto_topup_enabled,
            "threshold": (
                account.auto_topup_threshold or self.license.low_balance_threshold
            ).quantize(cents),
            "amount": (account.auto_topup_amount or Decimal("25")).quantize(cents),
            "monthly_count": account.auto_topup_monthly_count,
            "monthly_amount": account.auto_topup_monthly_amount.quantize(cents),
        }

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        count, dollars = auto_topup_month_used(self.license)
        context.update(
            account=account_get(self.license),
            card=default_card(self.license),
            used_count=count,
            used_amount=dollars,
        )
        return context

    def form_valid(self, form: AutoTopupForm) -> HttpResponse:
        data = form.cleaned_data
        try:
            auto_topup_settings_update(
                license=self.license,
                acting_user=self.user,
                enabled=data["enabled"],
                threshold=data["threshold"],
                amount=data["amount"],
                monthly_count=data["monthly_count"],
                monthly_amount=data["monthly_amount"],
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self.form_invalid(form)
        messages.success(self.request, "Auto top-up settings saved.")
        balance = balance_get(self.license).balance
        if data["enabled"] and balance < data["threshold"]:
            # Chosen over charging at once: saving a setting never charges a card.
            messages.warning(
                self.request,
                f"Your balance ({format_money(balance, 2)}) is already below "
                f"{format_money(data['threshold'], 2)}, and nothing was charged now: saving "
                "never charges your card. The first top-up comes with the next change to "
                "your balance (usually your next usage); to add funds now, purchase credits.",
            )
        return redirect("dashboard:auto_topup", license_id=self.license.public_id)
