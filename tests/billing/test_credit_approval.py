"""Four eyes on large credits (issue 18): a goodwill credit or a purchase recorded by hand
above CREDIT_APPROVAL_LIMIT waits for a second, different Billing member, who approves it
(credited exactly once, whoever clicks how often) or rejects it with a reason; each step
audited. Up to the limit, one Billing member credits at once, as before."""

import threading
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.db import connection

from accounts.models import AuditEvent
from accounts.roles import BILLING
from billing.credits.approvals import (
    credit_approval_approve,
    credit_approval_reject,
    credit_approval_request,
)
from billing.models import CreditApproval, LedgerEntry
from billing.purchases.services import purchase_record
from billing.refunds.services import refund_issue
from portal.exceptions import ApplicationError
from tests.accounts.factories import LicenseFactory, UserFactory
from tests.conftest import staff_force_login
from tests.ledger import assert_ledger_consistent, ledger_sums
from tests.matching import search

ADMIN = "/admin/billing"


def billing_member(email):
    user = UserFactory(email=email, is_staff=True)
    user.groups.add(Group.objects.get(name=BILLING))
    return user


def form_key(response):
    return search(r'name="idempotency_key" value="([^"]+)"', response.content.decode()).group(1)


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def asker(db):
    return billing_member("asker@portal.example")


@pytest.fixture
def approver(db):
    return billing_member("approver@portal.example")


def goodwill(license, user, amount, key="goodwill-key-0001"):
    return credit_approval_request(
        acting_user=user,
        license=license,
        kind=CreditApproval.Kind.GOODWILL,
        amount=Decimal(amount),
        reason="A week of outages",
        idempotency_key=key,
    ).approval


# --- the limit ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_at_the_limit_goodwill_posts_at_once_above_it_waits(billing_client, license_a, settings):
    settings.CREDIT_APPROVAL_LIMIT = "500"
    url = f"{ADMIN}/ledgerentry/license/{license_a.pk}/goodwill/"
    at_limit = billing_client.post(
        url,
        {"amount": "500", "reason": "outage", "idempotency_key": form_key(billing_client.get(url))},
    )
    assert at_limit.status_code == 302
    assert LedgerEntry.objects.filter(kind="credit").count() == 1

    above = billing_client.post(
        url,
        {
            "amount": "500.000001",
            "reason": "outage",
            "idempotency_key": form_key(billing_client.get(url)),
        },
    )
    approval = CreditApproval.objects.get()
    assert above["Location"] == f"{ADMIN}/creditapproval/{approval.pk}/change/"
    assert "waits for a second Billing member" in messages_of(above)[0]
    assert (approval.status, approval.amount, approval.requested_by) == (
        "pending",
        Decimal("500.000001"),
        billing_client.user,
    )
    assert LedgerEntry.objects.filter(kind="credit").count() == 1  # nothing credited yet
    assert (
        AuditEvent.objects.filter(action="credit.request", actor=billing_client.user).count() == 1
    )


@pytest.mark.django_db
def test_a_large_purchase_by_hand_waits_and_a_double_submit_is_one_request(
    billing_client, license_a
):
    url = f"{ADMIN}/ledgerentry/license/{license_a.pk}/purchase/"
    data = {"amount": "$12,000.00", "external_id": "INV-77", "description": "Annual invoice"}
    first = billing_client.post(url, data)
    second = billing_client.post(url, data)
    assert first.status_code == second.status_code == 302
    assert CreditApproval.objects.count() == 1
    assert "already asked for" in messages_of(second)[-1]
    assert not LedgerEntry.objects.exists()
    other = billing_client.post(url, {**data, "amount": "13000"})
    assert other.status_code == 200
    assert "already asks for" in " ".join(other.context["form"].errors["external_id"])


@pytest.mark.django_db
def test_the_services_refuse_a_large_credit_without_its_approval(license_a, asker):
    with pytest.raises(ApplicationError, match="need a second Billing member") as refused:
        refund_issue(
            acting_user=asker,
            license=license_a,
            amount=Decimal("501"),
            reason="shell",
            idempotency_key="shell-goodwill-1",
        )
    assert refused.value.field == "amount"
    with pytest.raises(ApplicationError, match="need a second Billing member"):
        purchase_record(
            acting_user=asker, license=license_a, amount=Decimal("501"), external_id="INV-X"
        )
    # A payment the provider reports (nobody typed it) is not limited.
    purchase_record(license=license_a, amount=Decimal("5000"), external_id="pi_card")
    # Another request's approval does not unlock a different credit.
    approval = goodwill(license_a, asker, "600")
    with pytest.raises(ApplicationError, match="not the one"):
        refund_issue(
            acting_user=asker,
            license=license_a,
            amount=Decimal("601"),
            reason="shell",
            idempotency_key="shell-goodwill-2",
            approval=approval,
        )
    # Its own approval does not let the requester post it either.
    with pytest.raises(ApplicationError, match="four eyes"):
        refund_issue(
            acting_user=asker,
            license=license_a,
            amount=Decimal("600"),
            reason="shell",
            idempotency_key=approval.key,
            approval=approval,
        )
    assert ledger_sums(license_a)["balance"] == Decimal("5000")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "positive"),
        ("-700", "positive"),
        ("400", "posted directly"),
        ("1000000000000", "at most"),
        ("700.0000001", "6 decimal places"),
    ],
)
def test_a_request_out_of_range_is_refused_by_field(license_a, asker, amount, message):
    with pytest.raises(ApplicationError, match=message) as refused:
        goodwill(license_a, asker, amount)
    assert refused.value.field == "amount"
    assert not CreditApproval.objects.exists()


# --- four eyes ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_requester_cannot_approve_or_reject_their_own(client, license_a, asker):
    approval = goodwill(license_a, asker, "900")
    for decide in (
        lambda: credit_approval_approve(acting_user=asker, approval_id=approval.pk),
        lambda: credit_approval_reject(acting_user=asker, approval_id=approval.pk, reason="no"),
    ):
        with pytest.raises(ApplicationError, match="second Billing member"):
            decide()
    staff_force_login(client, asker)
    page = client.get(f"{ADMIN}/creditapproval/{approval.pk}/change/").content.decode()
    assert "You asked for this credit" in page and "Approve and credit" not in page
    client.post(f"{ADMIN}/creditapproval/{approval.pk}/approve/")
    approval.refresh_from_db()
    assert approval.status == "pending" and not LedgerEntry.objects.exists()
    # Even written straight to the table, one person cannot be both.
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        CreditApproval.objects.filter(pk=approval.pk).update(
            status="rejected", decided_by=asker, decided_at=approval.requested_at,
            rejection_reason="mine",
        )  # fmt: skip


@pytest.mark.django_db
def test_a_second_billing_member_approves_and_the_credit_posts_once(
    client, license_a, asker, approver
):
    approval = goodwill(license_a, asker, "900")
    staff_force_login(client, approver)
    page = client.get(f"{ADMIN}/creditapproval/{approval.pk}/change/").content.decode()
    assert "Approve and credit" in page
    url = f"{ADMIN}/creditapproval/{approval.pk}/approve/"
    first = client.post(url)
    again = client.post(url)  # a double click, or the back button and submit
    assert first.status_code == again.status_code == 302
    assert "credited as entry" in messages_of(first)[0]
    assert "nothing was added" in messages_of(again)[-1]
    credit = LedgerEntry.objects.get()
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by, approval.entry) == ("approved", approver, credit)
    assert (credit.kind, credit.amount, credit.reason, credit.created_by) == (
        "credit",
        Decimal("900.000000"),
        "A week of outages",
        approver,
    )
    assert AuditEvent.objects.filter(action="credit.approve", actor=approver).count() == 1
    assert AuditEvent.objects.filter(action="refund.issue").count() == 1
    assert_ledger_consistent(license_a)
    # Approved is final: it cannot be rejected afterwards.
    with pytest.raises(ApplicationError, match="already approved"):
        credit_approval_reject(acting_user=approver, approval_id=approval.pk, reason="oops")


@pytest.mark.django_db
def test_an_approved_purchase_is_recorded_under_its_payment_reference(license_a, asker, approver):
    approval = credit_approval_request(
        acting_user=asker,
        license=license_a,
        kind=CreditApproval.Kind.PURCHASE,
        amount=Decimal("2500"),
        external_id="INV-2500",
        description="Invoice 2500",
    ).approval
    credit_approval_approve(acting_user=approver, approval_id=approval.pk)
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.external_id, entry.description) == (
        "purchase",
        Decimal("2500.000000"),
        "INV-2500",
        "Invoice 2500",
    )
    assert ledger_sums(license_a)["total_purchased"] == Decimal("2500")


@pytest.mark.django_db
def test_a_rejection_needs_a_reason_credits_nothing_and_is_audited(
    client, license_a, asker, approver
):
    approval = goodwill(license_a, asker, "900")
    staff_force_login(client, approver)
    url = f"{ADMIN}/creditapproval/{approval.pk}/reject/"
    without = client.post(url, {"reason": "  "})
    assert "say why" in messages_of(without)[0]
    approval.refresh_from_db()
    assert approval.status == "pending"
    client.post(url, {"reason": "Not agreed with the account manager"})
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by, approval.rejection_reason) == (
        "rejected",
        approver,
        "Not agreed with the account manager",
    )
    assert not LedgerEntry.objects.exists()
    event = AuditEvent.objects.get(action="credit.reject")
    assert (event.actor, event.reason) == (approver, "Not agreed with the account manager")
    # A rejected request is not approved later.
    other = billing_member("third@portal.example")
    with pytest.raises(ApplicationError, match="was rejected"):
        credit_approval_approve(acting_user=other, approval_id=approval.pk)
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_support_reads_the_queue_but_decides_nothing(support_client, license_a, asker):
    approval = goodwill(license_a, asker, "900")
    listing = support_client.get(f"{ADMIN}/creditapproval/")
    assert listing.status_code == 200 and "pending" in listing.content.decode().lower()
    page = support_client.get(f"{ADMIN}/creditapproval/{approval.pk}/change/")
    assert page.status_code == 200 and "Approve and credit" not in page.content.decode()
    for action in ("approve", "reject"):
        response = support_client.post(
            f"{ADMIN}/creditapproval/{approval.pk}/{action}/", {"reason": "x"}
        )
        assert response.status_code == 403
    approval.refresh_from_db()
    assert approval.status == "pending" and not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_the_queue_shows_waiting_requests_first(billing_client, license_a, asker, approver):
    decided = goodwill(license_a, asker, "800", key="goodwill-old-0001")
    credit_approval_reject(acting_user=approver, approval_id=decided.pk, reason="no")
    waiting = goodwill(license_a, asker, "900", key="goodwill-new-0001")
    approved = goodwill(license_a, asker, "1000", key="goodwill-new-0002")
    credit_approval_approve(acting_user=approver, approval_id=approved.pk)
    listing = billing_client.get(f"{ADMIN}/creditapproval/")
    assert [a.pk for a in listing.context["cl"].result_list] == [
        waiting.pk,
        approved.pk,
        decided.pk,
    ]


# --- exactly once under concurrency ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_post_the_credit_exactly_once():
    """Two approvers and a double click, released at the same instant on their own
    database connections: one credit, one approval, the others told it was done."""
    license = LicenseFactory(key="FOUR-EYES-01")
    asker = billing_member("asker@portal.example")
    approvers = [billing_member(f"approver{i}@portal.example") for i in range(2)]
    approval = goodwill(license, asker, "750", key="concurrent-goodwill-1")
    deciders = [approvers[0], approvers[1], approvers[1]]
    barrier = threading.Barrier(len(deciders))
    outcomes: list[object] = []

    def approve(user):
        try:
            barrier.wait(timeout=30)
            outcomes.append(credit_approval_approve(acting_user=user, approval_id=approval.pk))
        except Exception as exc:  # reported to the test below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in deciders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [type(o).__name__ for o in outcomes] == ["ApprovalResult"] * 3, outcomes
    assert sorted(o.created for o in outcomes) == [False, False, True]  # type: ignore[attr-defined]
    assert LedgerEntry.objects.filter(license=license).count() == 1
    assert AuditEvent.objects.filter(action="credit.approve").count() == 1
    assert ledger_sums(license)["balance"] == Decimal("750")
    assert_ledger_consistent(license)


@pytest.mark.django_db
def test_a_superuser_can_be_the_second_person(root_client, license_a, asker):
    approval = goodwill(license_a, asker, "900")
    response = root_client.post(f"{ADMIN}/creditapproval/{approval.pk}/approve/")
    assert response.status_code == 302
    approval.refresh_from_db()
    assert approval.status == "approved" and approval.decided_by == root_client.user
