"""Only ASCII digits are amounts (invariant 12; issue 29): a threshold "１０" (fullwidth) was
saved as 10, "٥٠" as 50, a custom purchase "１０" made a $10 payment, and a goodwill of
"੧੦.੦੦" (Gurmukhi, which reads like "90.00") credited $10. Every amount and count field of
every form, and the API's numbers, refuse the digits of other scripts, naming the field."""

import contextlib
import importlib
from decimal import Decimal

import pytest
from django import forms
from django.apps import apps
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import License, Membership
from billing.forms import GoodwillForm, PriceForm, PurchaseForm, RefundForm
from billing.models import LedgerEntry
from payments.forms import AutoTopupForm, CreditPurchaseForm
from portal.amounts import AmountField, CountField, foreign_digits, parse_amount
from tests.accounts.factories import MembershipFactory
from tests.matching import search

# Ten (and ten point zero zero) in the digits of several scripts, and ASCII mixed with them.
SCRIPTS = {
    "fullwidth": ("１０", "１０.００"),
    "arabic-indic": ("١٠", "١٠.٠٠"),
    "persian": ("۱۰", "۱۰.۰۰"),
    "devanagari": ("१०", "१०.००"),
    "gurmukhi": ("੧੦", "੧੦.੦੦"),
    "bengali": ("১০", "১০.০০"),
    "thai": ("๑๐", "๑๐.๐๐"),
    "mixed": ("1０", "1٠.00"),
    "superscript": ("1²", "1.²"),
}
WHOLE = [pytest.param(whole, id=name) for name, (whole, _) in SCRIPTS.items()]
ANY = [
    pytest.param(text, id=f"{name}-{kind}")
    for name, pair in SCRIPTS.items()
    for kind, text in zip(("whole", "decimal"), pair, strict=True)
]
REFUSED = "has digits other than 0-9"


def refused(form: forms.BaseForm, field: str) -> str:
    assert not form.is_valid()
    [message] = [str(error) for error in form.errors[field]]
    assert REFUSED in message and "type the number with the digits 0 to 9" in message
    return message


@pytest.mark.parametrize("text", ANY)
def test_the_one_parser_refuses_other_scripts_digits(text):
    assert foreign_digits(text)
    with pytest.raises(ValueError, match=REFUSED):
        parse_amount(text, places=6)


@pytest.mark.parametrize("text", ["10", "1,000.50", "$0.50", "-3", ".5"])
def test_ascii_amounts_still_parse(text):
    assert not foreign_digits(text) and parse_amount(text, places=6) is not None


@pytest.mark.parametrize("text", ANY)
def test_the_billing_teams_money_forms_refuse_them(text):
    key = {"idempotency_key": "k" * 10, "reason": "outage"}
    refused(GoodwillForm(data={"amount": text, **key}), "amount")
    refused(RefundForm(data={"amount": text, **key}), "amount")
    refused(PurchaseForm(data={"amount": text, "external_id": "INV-1"}), "amount")
    refused(PriceForm(data={"service": "ai_images", "unit_price": text}), "unit_price")


@pytest.mark.parametrize("text", WHOLE)
def test_the_hidden_flag_number_refuses_them(text):
    form = RefundForm(
        data={"amount": "1", "idempotency_key": "k" * 10, "reason": "x", "flag": text}
    )
    refused(form, "flag")


@pytest.mark.parametrize("text", ANY)
def test_the_customers_payment_forms_refuse_them(text):
    refused(CreditPurchaseForm(data={"preset": "custom", "custom_amount": text}), "custom_amount")
    good = {"enabled": "on", "threshold": "5", "amount": "10", "monthly_count": "3"}
    good["monthly_amount"] = "100"
    assert AutoTopupForm(data=good).is_valid()
    for field in ("threshold", "amount", "monthly_amount"):
        refused(AutoTopupForm(data={**good, field: text}), field)


@pytest.mark.parametrize("text", WHOLE)
def test_the_monthly_top_up_count_refuses_them(text):
    good = {"threshold": "5", "amount": "10", "monthly_count": "3", "monthly_amount": "100"}
    refused(AutoTopupForm(data={**good, "monthly_count": text}), "monthly_count")


@pytest.mark.django_db
@pytest.mark.parametrize("text", ANY)
def test_the_staff_license_form_refuses_them(license_a, text):
    from accounts.admin import LicenseForm

    refused(
        LicenseForm(instance=license_a, data={"low_balance_threshold": text}),
        "low_balance_threshold",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["１０", "٥٠", "੧੦.੦੦", "१०"])
def test_the_alert_threshold_page_names_the_field_and_saves_nothing(client, license_a, text):
    owner = MembershipFactory(license=license_a, role=Membership.Role.OWNER)
    client.force_login(owner.user)
    url = reverse("dashboard:alert_settings", kwargs={"license_id": license_a.public_id})
    response = client.post(url, {"low_balance_threshold": text, "extra_emails": ""})
    assert response.status_code == 200
    assert f"Low-balance threshold ($): &#x27;{text}&#x27; {REFUSED}" in response.content.decode()
    assert License.objects.get(pk=license_a.pk).low_balance_threshold == Decimal("1.000000")


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["੧੦.੦੦", "１０", "١٠"])
def test_a_goodwill_in_other_digits_credits_nothing(billing_client, license_a, text):
    base = f"/admin/billing/ledgerentry/license/{license_a.pk}"
    page = billing_client.get(f"{base}/goodwill/").content.decode()
    key = search(r'name="idempotency_key" value="([^"]+)"', page)[1]
    response = billing_client.post(
        f"{base}/goodwill/", {"amount": text, "reason": "outage", "idempotency_key": key}
    )
    assert response.status_code == 200
    assert REFUSED in response.context["form"].errors["amount"][0]
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["１０", "١٠"])
def test_a_custom_purchase_in_other_digits_names_the_field_and_makes_no_payment(
    client_a, license_a, text, settings
):
    from payments.models import Payment

    settings.STRIPE_SECRET_KEY = "sk_test_never_called"  # refused before Stripe is asked
    url = reverse("dashboard:purchase", kwargs={"license_id": license_a.public_id})
    response = client_a.post(url, {"preset": "custom", "custom_amount": text})
    assert response.status_code == 200
    assert f"Other amount: &#x27;{text}&#x27; {REFUSED}" in response.content.decode()
    assert not Payment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tail", "name"),
    [
        ("/transactions?limit=١٠", "limit"),
        ("/transactions?limit=１０", "limit"),
        ("/transactions?from=٢٠٢٥-٠١-٠١", "from"),
        ("/transactions/١٢", "transaction_id"),
        ("/usage?from=２０２５-０１-０１", "from"),
    ],
)
def test_the_api_refuses_other_digits_naming_the_parameter(
    client, bob_license, make_key, tail, name
):
    raw = make_key(bob_license)
    answer = client.get(
        f"/api/v1/licenses/{bob_license.public_id}{tail}", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert answer.status_code in (400, 404), answer.content
    if answer.status_code == 400:
        error = answer.json()["error"]
        assert error["code"] == "invalid_request" and error["message"].startswith(f"{name}:")


# --- every amount field is the one field ------------------------------------------------

OUR_APPS = ("accounts", "api", "billing", "console", "dashboard", "payments", "portal", "usage")


def _our_forms() -> list[type[forms.BaseForm]]:
    for app in OUR_APPS:
        for module in ("forms", "admin", "views", "payment_views", "webhook_views"):
            with contextlib.suppress(ModuleNotFoundError):
                importlib.import_module(f"{app}.{module}")
    found, todo = set(), [forms.BaseForm]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.split(".")[0] in OUR_APPS:
                found.add(sub)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__name__}")


def _admin_forms(superuser) -> list[tuple[str, type[forms.BaseForm]]]:
    request = RequestFactory().get("/")
    request.user = superuser
    out: list[tuple[str, type[forms.BaseForm]]] = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS or not model_admin.has_change_permission(request):
            continue
        out.append((model._meta.label, model_admin.get_form(request)))
    return out


NUMBERS = (forms.DecimalField, forms.FloatField, forms.IntegerField)


def _base_fields(form_class: type[forms.BaseForm]) -> dict[str, forms.Field]:
    # Form and ModelForm classes get base_fields from their metaclass; django-stubs
    # declares it on those two, not on BaseForm.
    return form_class.base_fields  # type: ignore[attr-defined]


def _numeric_fields(form_class: type[forms.BaseForm]) -> list[str]:
    return [
        name
        for name, field in _base_fields(form_class).items()
        if isinstance(field, NUMBERS) and not isinstance(field, CountField)
    ]


@pytest.mark.django_db
def test_every_number_typed_into_a_form_goes_through_the_one_rule(admin_user):
    """A DecimalField, FloatField or IntegerField anywhere in our forms or admin pages
    would read other scripts' digits: each must be an AmountField or a CountField."""
    assert apps.ready
    checked = _our_forms()
    assert len(checked) > 10  # the search found the forms
    offenders = [f"{f.__module__}.{f.__name__}.{n}" for f in checked for n in _numeric_fields(f)]
    admin_forms = _admin_forms(admin_user)
    assert any(label == "accounts.License" for label, _ in admin_forms)
    offenders += [f"admin {label}.{n}" for label, f in admin_forms for n in _numeric_fields(f)]
    assert offenders == []
    amounts = [
        (f.__name__, n)
        for f in checked
        for n, field in _base_fields(f).items()
        if isinstance(field, AmountField)
    ]
    assert len(amounts) >= 9, amounts
