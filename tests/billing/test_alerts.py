"""Low-balance alerts: one email at the threshold, one at zero, re-armed by a top-up."""

import threading
from decimal import Decimal
from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import connection

from accounts.models import AlertRecipient, Membership
from billing.alerts.emails import balance_alert_send
from billing.models import BalanceAlert
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory
from tests.conftest import staff_force_login
from tests.ledger import buy, spend


def alert_mails() -> list:
    """The alerts sent: the purchases these tests make also email their invoices
    (billing/documents), which are not what is tested here."""
    return [m for m in mail.outbox if not m.subject.startswith(("Invoice ", "Credit note "))]


@pytest.fixture
def owner(license_a):
    return MembershipFactory(license=license_a, user=UserFactory(email="owner@alpha.example")).user


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks, celery_eager):
    """Run what a service schedules for after its commit (the alert task) right away."""

    def run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return run


@pytest.mark.django_db
def test_sequence_of_syncs_and_purchases_sends_exactly_the_expected_emails(
    license_a, owner, run_on_commit
):
    run_on_commit(buy, license_a, "5.00")  # $5.00, threshold $1.00
    run_on_commit(spend, license_a, "3.50")  # $1.50: still above
    assert alert_mails() == []

    run_on_commit(spend, license_a, "0.70")  # $0.80: crosses the threshold
    assert [m.subject for m in alert_mails()] == [
        "Alpha Corp: your credit balance is low ($0.800000)"
    ]
    assert alert_mails()[0].to == ["owner@alpha.example"]

    run_on_commit(spend, license_a, "0.30")  # $0.50: still low, nothing new
    assert len(alert_mails()) == 1

    run_on_commit(spend, license_a, "0.60")  # -$0.10: reaches zero
    assert len(alert_mails()) == 2
    assert "has run out" in alert_mails()[1].subject
    assert "-$0.100000" in alert_mails()[1].subject

    run_on_commit(spend, license_a, "0.40")  # deeper below zero: nothing new
    assert len(alert_mails()) == 2

    run_on_commit(buy, license_a, "10.00")  # $9.50: re-armed, no email for going up
    assert len(alert_mails()) == 2

    run_on_commit(spend, license_a, "9.00")  # $0.50: low again
    assert len(alert_mails()) == 3
    assert "is low" in alert_mails()[2].subject
    assert list(BalanceAlert.objects.order_by("pk").values_list("kind", "balance")) == [
        ("low", Decimal("0.800000")),
        ("zero", Decimal("-0.100000")),
        ("low", Decimal("0.500000")),
    ]
    assert BalanceAlert.objects.filter(sent_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_dropping_straight_past_zero_sends_one_email(license_a, owner, run_on_commit):
    run_on_commit(buy, license_a, "2.00")
    run_on_commit(spend, license_a, "2.50")
    assert len(alert_mails()) == 1
    assert "has run out" in alert_mails()[0].subject


@pytest.mark.django_db
def test_email_carries_balance_threshold_burn_rate_forecast_and_purchase_link(
    license_a, owner, run_on_commit, settings
):
    settings.PURCHASE_URL = "https://pay.example/credits"
    run_on_commit(buy, license_a, "4.00")
    run_on_commit(spend, license_a, "3.10")  # $0.90 left, $3.10 spent in the window
    message = alert_mails()[0]
    assert "Balance:    $0.900000" in message.body
    assert "Threshold:  $1.000000" in message.body
    # $3.10 over 30 days = $0.103333/day; $0.90 lasts 8.7 days -> about 8 days.
    assert "$0.103333 per day" in message.body
    assert "lasts about 8 days" in message.body
    assert "https://pay.example/credits" in message.body
    assert isinstance(message, EmailMultiAlternatives)
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and isinstance(html, str)
    assert "$0.900000" in html and "https://pay.example/credits" in html


@pytest.mark.django_db
def test_recipients_are_opted_in_logins_and_extra_addresses(license_a, owner, run_on_commit):
    quiet = MembershipFactory(license=license_a, user=UserFactory(email="quiet@alpha.example"))
    Membership.objects.filter(pk=quiet.pk).update(receives_alerts=False)
    AlertRecipient.objects.create(license=license_a, email="finance@alpha.example")
    run_on_commit(buy, license_a, "1.50")
    run_on_commit(spend, license_a, "1.00")
    assert sorted(m.to[0] for m in alert_mails()) == [
        "finance@alpha.example",
        "owner@alpha.example",
    ]


@pytest.mark.django_db
def test_smtp_failure_is_recorded_and_a_retry_sends_once(license_a, owner, settings):
    buy(license_a, "1.50")
    spend(license_a, "1.00")  # alert owed; its task is not run here (no commit in this test)
    alert = BalanceAlert.objects.get()
    settings.EMAIL_BACKEND = "tests.billing.failing_email.FailingBackend"
    with pytest.raises(SMTPServerDisconnected):
        balance_alert_send(alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert.sent_at is None
    assert alert.attempts == 1
    assert "SMTPServerDisconnected" in alert.last_error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert balance_alert_send(alert_id=alert.pk) is True
    assert balance_alert_send(alert_id=alert.pk) is False  # idempotent: a redelivery sends nothing
    assert len(alert_mails()) == 1
    alert.refresh_from_db()
    assert alert.sent_at is not None and alert.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_two_syncs_crossing_the_line_at_the_same_moment_send_one_email(celery_eager):
    license = LicenseFactory(name="Race Co", key="RACE-000001")
    MembershipFactory(license=license, user=UserFactory(email="race@race.example"))
    buy(license, "1.20")
    barrier = threading.Barrier(2)
    errors = []

    def sync():
        try:
            barrier.wait(timeout=10)
            spend(license, "0.50")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert BalanceAlert.objects.filter(license=license).count() == 1
    assert len(alert_mails()) == 1
    assert "$0.700000" in alert_mails()[0].subject


@pytest.mark.django_db
def test_raising_the_threshold_sends_nothing_until_the_next_usage(license_a, owner, run_on_commit):
    from billing.alerts.services import license_alert_settings_update

    run_on_commit(buy, license_a, "5.00")
    run_on_commit(
        license_alert_settings_update,
        acting_user=owner,
        license=license_a,
        threshold=Decimal("10"),
        alert_membership_ids=list(Membership.objects.values_list("pk", flat=True)),
        extra_emails=[],
    )
    assert alert_mails() == []
    run_on_commit(spend, license_a, "0.01")
    assert len(alert_mails()) == 1
    assert "below your alert threshold of $10.000000" in alert_mails()[0].body


@pytest.mark.django_db
def test_staff_see_alerts_in_the_admin_and_cannot_edit_them(client, license_a, owner):
    from django.contrib.auth.models import Group

    from accounts.roles import SUPPORT

    buy(license_a, "1.50")
    spend(license_a, "1.00")
    alert = BalanceAlert.objects.get()
    support = UserFactory(email="sup@portal.example", is_staff=True)
    support.groups.add(Group.objects.get(name=SUPPORT))
    staff_force_login(client, support)
    listing = client.get("/admin/billing/balancealert/")
    assert listing.status_code == 200
    assert "Alpha Corp" in listing.content.decode()
    assert client.get(f"/admin/billing/balancealert/{alert.pk}/change/").status_code == 200
    assert client.post(f"/admin/billing/balancealert/{alert.pk}/delete/").status_code == 403


@pytest.mark.django_db
def test_plain_text_emails_are_not_html_escaped(license_a, owner, run_on_commit):
    license_a.name = "Smith & Sons <Ltd>"
    license_a.save(update_fields=["name"])
    run_on_commit(buy, license_a, "1.50")
    run_on_commit(spend, license_a, "1.00")
    [message] = alert_mails()
    assert "Smith & Sons <Ltd>" in message.body and "&amp;" not in message.body
    assert "Smith & Sons" in message.subject and "&amp;" not in message.subject
    assert isinstance(message, EmailMultiAlternatives)
    html, _ = message.alternatives[0]
    assert isinstance(html, str)
    assert "Smith &amp; Sons &lt;Ltd&gt;" in html  # the HTML part stays escaped
