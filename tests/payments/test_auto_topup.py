"""Auto top-up: "below $X add $Y", decided in the balance-change path (under the balance
lock), charged by a task after commit; one top-up per crossing, monthly count and dollar
caps, switched off after 2 consecutive failures, an email on each."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import License, User
from billing.ledger.selectors import balance_get
from payments.autotopup import auto_topup_settings_update
from payments.models import Payment, PaymentAccount
from portal.exceptions import ApplicationError
from tests.ledger import assert_ledger_consistent, buy, record_usage
from tests.payments.conftest import CARD_DECLINED_ON_CHARGE, reconciles
from tests.payments.helpers import save_card

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)


@pytest.fixture
def spend(celery_eager, django_capture_on_commit_callbacks):
    """Charge usage of `dollars` (completion tokens at $1 per 1M), then run what it hands
    to workers, as a sync page would."""
    counter = iter(range(1_000_000))

    def charge(license, dollars: str):
        tokens = int(Decimal(dollars) * 1_000_000)
        with django_capture_on_commit_callbacks(execute=True):
            record_usage(license, f"rec-{next(counter)}", at=NOW, completion_tokens=tokens)

    return charge


def rule(
    license: License,
    user: User,
    *,
    threshold: Decimal = Decimal("5"),
    amount: Decimal = Decimal("10"),
    monthly_count: int = 5,
    monthly_amount: Decimal = Decimal("500"),
) -> PaymentAccount:
    """Switch auto top-up on with these limits."""
    return auto_topup_settings_update(
        license=license,
        acting_user=user,
        enabled=True,
        threshold=threshold,
        amount=amount,
        monthly_count=monthly_count,
        monthly_amount=monthly_amount,
    )


def topups(license):
    return list(Payment.objects.for_license(license).filter(source="auto_topup").order_by("pk"))


@pytest.fixture
def owner_with_card(localstripe, license_a, member_a):
    save_card(localstripe, license_a, member_a)
    buy(license_a, "6", "opening")
    return member_a


def test_falling_below_the_line_tops_up_once_and_sends_one_email(license_a, owner_with_card, spend):
    rule(license_a, owner_with_card)
    spend(license_a, "2")  # 6 -> 4: below $5
    [payment] = topups(license_a)
    assert payment.status == "succeeded" and payment.amount == Decimal("10.000000")
    assert balance_get(license_a).balance == Decimal("14.000000")
    # The top-up's own email, and its invoice (every purchase has one, auto top-ups too).
    assert sum("Auto top-up" in m.subject for m in mail.outbox) == 1
    [invoice_email] = [m for m in mail.outbox if m.subject.startswith("Invoice INV-")]
    assert "$10.00" in invoice_email.subject and len(mail.outbox) == 2
    assert payment.ledger_entry.document.payment_method.endswith(", auto top-up")
    # Above the line again: spending that stays above it starts nothing.
    spend(license_a, "1")
    assert len(topups(license_a)) == 1
    assert_ledger_consistent(license_a)
    assert "reconcile with the ledger" in reconciles(f"{NOW:%Y-%m}")


def test_one_crossing_never_gets_two_top_ups(license_a, owner_with_card, spend):
    # $1 added to $4 stays below $50: the next charges are the same crossing.
    rule(license_a, owner_with_card, threshold=Decimal("50"), amount=Decimal("5"))
    spend(license_a, "2")
    spend(license_a, "1")
    spend(license_a, "1")
    assert len(topups(license_a)) == 1
    assert balance_get(license_a).balance == Decimal("7.000000")


def test_the_monthly_count_cap_holds_and_says_so(license_a, owner_with_card, spend):
    rule(license_a, owner_with_card, monthly_count=2)
    for _ in range(4):
        spend(license_a, "10") if topups(license_a) else spend(license_a, "2")
    assert len(topups(license_a)) == 2
    assert any("paused" in m.subject for m in mail.outbox)
    assert_ledger_consistent(license_a)


def test_the_monthly_dollar_cap_holds(license_a, owner_with_card, spend):
    rule(license_a, owner_with_card, amount=Decimal("10"), monthly_amount=Decimal("15"))
    spend(license_a, "2")
    spend(license_a, "10")
    assert len(topups(license_a)) == 1
    assert balance_get(license_a).balance == Decimal("4.000000")


def test_two_failures_in_a_row_switch_it_off_and_say_why(localstripe, license_a, member_a, spend):
    save_card(localstripe, license_a, member_a, CARD_DECLINED_ON_CHARGE)
    buy(license_a, "6", "opening")
    rule(license_a, member_a, threshold=Decimal("5"))
    spend(license_a, "2")  # first failure; the rule stays on, disarmed for this crossing
    account = PaymentAccount.objects.get(license=license_a)
    assert account.auto_topup_enabled and account.auto_topup_failures == 1
    buy(license_a, "10", "manual")  # back above the line: armed again
    spend(license_a, "10")  # second failure in a row: off
    account.refresh_from_db()
    assert not account.auto_topup_enabled
    assert "2 top-ups in a row failed" in account.auto_topup_disabled_reason
    assert [p.status for p in topups(license_a)] == ["failed", "failed"]
    assert sum("failed" in m.subject for m in mail.outbox) == 2
    assert "switched off" in mail.outbox[-1].body
    buy(license_a, "10", "manual-2")
    spend(license_a, "10")
    assert len(topups(license_a)) == 2  # off means off
    assert balance_get(license_a).balance == Decimal("4.000000")


def test_it_cannot_be_switched_on_without_a_card(localstripe, license_a, member_a):
    with pytest.raises(ApplicationError, match="Save a card"):
        rule(license_a, member_a)


def test_a_declined_top_up_is_a_webhook_event(localstripe, license_a, member_a, spend):
    import json

    from api.services import webhook_endpoint_create
    from tests.api.conftest import Receiver

    hook = Receiver([])
    try:
        webhook_endpoint_create(
            acting_user=member_a, license=license_a, url=hook.url, events=["auto_topup.failed"]
        )
        save_card(localstripe, license_a, member_a, CARD_DECLINED_ON_CHARGE)
        buy(license_a, "6", "opening")
        rule(license_a, member_a, threshold=Decimal("5"))
        spend(license_a, "2")  # below the line: the top-up is tried and declined
        [payment] = topups(license_a)
        events = [json.loads(body) for _, body in hook.requests]
        assert [e["type"] for e in events] == ["auto_topup.failed"]
        data = events[0]["data"]
        assert data["payment_id"] == payment.pk and data["amount"] == "10.000000"
        assert data["message"] == payment.failure_message != ""
        assert data["auto_topup_switched_off"] is False  # the first failure only
    finally:
        hook.close()


def test_auto_top_up_charges_the_default_card_the_owner_chose(
    localstripe, license_a, owner_with_card, spend, client_a
):
    second = save_card(localstripe, license_a, owner_with_card, "5555555555554444")
    client_a.post(
        reverse("dashboard:cards", kwargs={"license_id": license_a.public_id}),
        {"card": second.pk, "action": "default"},
    )
    rule(license_a, owner_with_card)
    spend(license_a, "2")  # 6 -> 4: below $5
    [payment] = topups(license_a)
    assert payment.status == "succeeded" and payment.card_label == second.label


def test_switching_it_on_below_the_line_says_plainly_that_nothing_was_charged_now(
    license_a, owner_with_card, client_a, spend
):
    # The balance is $6; the line is $10: already below it when switched on.
    response = client_a.post(
        reverse("dashboard:auto_topup", kwargs={"license_id": license_a.public_id}),
        {
            "enabled": "on",
            "threshold": "10",
            "amount": "25",
            "monthly_count": "5",
            "monthly_amount": "500",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "Your balance ($6.00) is already below $10.00, and nothing was charged now" in page
    assert not topups(license_a)
    # As the page says: the next usage brings the first top-up.
    spend(license_a, "1")
    [payment] = topups(license_a)
    assert payment.status == "succeeded" and payment.amount == Decimal("25.000000")
