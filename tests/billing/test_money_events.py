"""Money events (billing/events): what happened to money is written down in the posting
transaction, and the apps above read it after commit, each consumer exactly once: nothing
of payments runs (or locks) inside a posting, a consumer killed before its commit leaves
nothing and the next run does the work once, and an event whose transaction commits after
a later one is not skipped."""

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from decimal import Decimal

import pytest
from celery.signals import before_task_publish
from django.db import connection, transaction

from accounts.models import AuditEvent, License, User
from api.events import EVENT_TYPES, WEBHOOK_CONSUMER
from api.models import WebhookEvent
from api.services import webhook_endpoint_create
from billing.events.consumers import Consumer, money_event_consumer_run, money_event_consumers
from billing.events.crossing import Crossing, Line, crossing_step
from billing.events.models import MoneyEvent, MoneyEventCursor
from billing.events.tasks import money_events_consume
from billing.handoffs import handoffs_deferred
from billing.ledger.selectors import balance_get
from billing.refunds.services import refund_issue
from payments.autotopup import auto_topup_settings_update
from payments.models import Payment, PaymentAccount, SavedCard
from payments.receivers import AUTO_TOPUP_CONSUMER
from portal.celery import app as celery_app
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory
from tests.api.conftest import Receiver
from tests.ledger import buy, spend
from tests.payments.conftest import SECRET_KEY, localstripe, localstripe_server  # noqa: F401
from tests.payments.helpers import save_card
from tests.processes import ROOT, child_env, wait_for
from tests.services import DEAD_REDIS_URL, redis_at


def consumer(name: str) -> Consumer:
    [found] = [c for c in money_event_consumers() if c.name == name]
    return found


def _locked_relations(prefix: str) -> list[tuple[str, str]]:
    """The relations this connection's transaction holds a lock on, whose names start so."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, l.mode FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation
            WHERE l.pid = pg_backend_pid() AND c.relname LIKE %s ORDER BY 1, 2
            """,
            [prefix + "%"],
        )
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_a_usage_page_posting_takes_no_lock_on_a_payments_table(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_no_call_is_made"
    license = LicenseFactory(key="LOCKS-000001")
    buy(license, "6.00")
    PaymentAccount.objects.create(
        license=license,
        auto_topup_enabled=True,
        auto_topup_threshold=Decimal("5"),
        auto_topup_amount=Decimal("10"),
        auto_topup_monthly_amount=Decimal("100"),
    )
    SavedCard.objects.create(
        license=license, payment_method_id="pm_locks", last4="4242", is_default=True
    )
    with transaction.atomic():
        spend(license, "2.00")  # $4.00: below the top-up line and the alert threshold
        billing = _locked_relations("billing_")
        payments = _locked_relations("payments_")
        [written] = MoneyEvent.objects.filter(license=license, type="usage.recorded")
    assert ("billing_licensebalance", "RowShareLock") in billing  # the posting's own lock
    assert payments == []
    assert written.data["balance_before"] == "6.000000"
    assert written.data["balance_after"] == "4.000000"


@pytest.mark.django_db
def test_the_hand_overs_a_sync_holds_back_are_made_once_and_stop_at_a_refusing_broker(
    settings, django_capture_on_commit_callbacks
):
    license = LicenseFactory(key="HANDOFF-000001")
    published: list[str] = []

    def publishing(sender: str | None = None, **kwargs: object) -> None:
        published.append(str(sender))

    before_task_publish.connect(publishing)
    try:
        # Bought first (its invoice's email is a hand-over of its own, not this test's).
        buy(license, "1.50")
        with redis_at(DEAD_REDIS_URL, settings), handoffs_deferred():
            with django_capture_on_commit_callbacks(execute=True):
                spend(license, "0.50")
                spend(license, "0.50")  # $0.50: an alert owed too
            assert published == []  # held back while the sync's lock is held
        # The two postings' nudge is made once, refused; the alert then waits for its sweep.
        assert published == ["billing.money_events_consume"]
    finally:
        before_task_publish.disconnect(publishing)


def test_beat_sweeps_the_money_events_between_nudges():
    entry = celery_app.conf.beat_schedule["billing-money-events-every-thirty-seconds"]
    assert entry["task"] == money_events_consume.name == "billing.money_events_consume"
    assert entry["options"]["expires"] < entry["schedule"] <= 60


# The one crossing rule, as the alerts use it: below the $5 threshold, then zero or below.
ALERT_LINES = (Line(Decimal("5")), Line(Decimal("0"), at=True))


@pytest.mark.parametrize(
    ("level", "balance", "expected"),
    [
        (0, "10", Crossing(0)),  # above every line: armed
        (0, "4.99", Crossing(1, crossed=1)),  # below the threshold: news, once
        (1, "3", Crossing(1)),  # further below the same line: no news
        (1, "0", Crossing(2, crossed=2)),  # zero is crossed "at or below"
        (0, "-1", Crossing(2, crossed=2)),  # straight past both lines: the deepest, once
        (2, "2", Crossing(2)),  # back above zero but below the threshold: nothing re-arms
        (2, "5", Crossing(0)),  # at the first line again: every line re-armed
    ],
)
def test_a_line_is_crossed_once_until_the_balance_is_back_above_the_first(level, balance, expected):
    assert crossing_step(level=level, balance=Decimal(balance), lines=ALERT_LINES) == expected


@pytest.mark.django_db(transaction=True)
def test_an_event_whose_transaction_commits_after_a_later_one_is_not_skipped(celery_eager):
    """Event A takes its id first and commits last: a cursor on the id alone would pass A
    once B (a higher id) is read, and never see it. Goodwill credits: two purchases would
    commit in turn (their invoices' numbers are allocated one transaction at a time)."""
    first, second = LicenseFactory(key="ORDER-A"), LicenseFactory(key="ORDER-B")
    owner = UserFactory(email="owner@order.example")
    hook = Receiver([])
    try:
        for license in (first, second):
            webhook_endpoint_create(
                acting_user=owner, license=license, url=hook.url, events=["credit.granted"]
            )
        written, release = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def posting_a() -> None:
            try:
                with transaction.atomic():
                    goodwill(owner, first, "1.00", "pay-A")
                    written.set()
                    release.wait(timeout=30)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=posting_a)
        thread.start()
        assert written.wait(timeout=30)
        goodwill(owner, second, "2.00", "pay-B")  # commits (and is nudged) while A is open
        waiting = money_event_consumer_run(consumer(WEBHOOK_CONSUMER))
        assert (waiting.processed, waiting.waiting) == (0, True)
        assert not WebhookEvent.objects.exists()
        release.set()  # A commits, and its own nudge reads A, then B
        thread.join(timeout=30)
        assert errors == []
        event_a, event_b = MoneyEvent.objects.filter(type="credit.granted").order_by("id")
        assert event_a.license == first and event_a.xact_id < event_b.xact_id
        recorded = list(WebhookEvent.objects.order_by("id").values_list("license__key", flat=True))
        assert recorded == ["ORDER-A", "ORDER-B"]
        assert money_event_consumer_run(consumer(WEBHOOK_CONSUMER)).processed == 0
    finally:
        hook.close()


def goodwill(user: User, license: License, amount: str, key: str) -> None:
    refund_issue(
        acting_user=user,
        license=license,
        amount=Decimal(amount),
        reason="Goodwill",
        idempotency_key=key,
    )


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return bool(cursor.fetchone()[0])


def _killed_before_its_commit(name: str) -> dict:
    """Run consumer `name` in a child process, held at its first commit; check that another
    run meanwhile finds the cursor taken; kill the child (SIGKILL). What its transaction
    held when it was killed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.money_event_child", name],
        cwd=ROOT, env=child_env(STRIPE_SECRET_KEY=SECRET_KEY, CELERY_BROKER_URL=DEAD_REDIS_URL),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line, child.stderr.read() if child.stderr else "no output"
        report = json.loads(line)
        busy = money_event_consumer_run(consumer(name))
        assert (busy.busy, busy.processed) == (True, 0)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=20)
    wait_for(lambda: not _backend_alive(report["backend_pid"]), message="the killed backend")
    return report["holds"]


@pytest.mark.django_db(transaction=True)
def test_a_consumer_killed_between_claim_and_commit_leaves_nothing_and_the_next_run_does_it_once(
    localstripe,  # noqa: F811
    settings,
    monkeypatch,
):
    license = LicenseFactory(key="KILLED-000001")
    owner = MembershipFactory(license=license, user=UserFactory(email="o@killed.example")).user
    hook = Receiver([])
    try:
        webhook_endpoint_create(
            acting_user=owner, license=license, url=hook.url, events=list(EVENT_TYPES)
        )
        save_card(localstripe, license, owner)
        for name in (WEBHOOK_CONSUMER, AUTO_TOPUP_CONSUMER):  # they ran before: at the start
            money_event_consumer_run(consumer(name))
        # Every nudge is lost (the broker is down): the events wait, written down.
        with redis_at(DEAD_REDIS_URL, settings):
            buy(license, "6.00", "opening")
            auto_topup_settings_update(
                license=license, acting_user=owner, enabled=True, threshold=Decimal("5"),
                amount=Decimal("10"), monthly_count=5, monthly_amount=Decimal("500"),
            )  # fmt: skip
            spend(license, "5.50")  # $0.50: below the top-up line and the $1.00 alert line
        events = list(MoneyEvent.objects.order_by("xact_id", "id"))
        assert [e.type for e in events] == ["purchase.succeeded", "usage.recorded", "balance.low"]
        last = [events[-1].xact_id, events[-1].pk]

        # A run of each consumer claims its cursor, does its work, moves its cursor, and
        # is killed before its commit.
        webhooks = _killed_before_its_commit(WEBHOOK_CONSUMER)
        assert webhooks == {"cursor": last, "webhook_events": 2, "topups": 0}
        topup = _killed_before_its_commit(AUTO_TOPUP_CONSUMER)
        assert topup == {"cursor": last, "webhook_events": 0, "topups": 1}
        # Nothing of the killed runs is left: no webhook event, no top-up, no cursor moved.
        assert not WebhookEvent.objects.exists()
        assert not Payment.objects.filter(source="auto_topup").exists()
        cursors = MoneyEventCursor.objects.values_list("xact_id", "event_id")
        assert list(cursors) == [(0, 0), (0, 0)]

        # The next run (the sweep, with a worker answering) does it all, once.
        monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
        money_events_consume()
        money_events_consume()  # and a second one finds nothing left to do
    finally:
        hook.close()
    [made] = Payment.objects.filter(source="auto_topup")
    assert made.status == "succeeded" and made.amount == Decimal("10.000000")
    assert AuditEvent.objects.filter(action="payment.create").count() == 1
    assert balance_get(license).balance == Decimal("10.500000")
    # Every announced event (the two purchases, the crossing) recorded once, delivered once.
    announced = MoneyEvent.objects.filter(type__in=EVENT_TYPES).values_list("type", flat=True)
    assert Counter(WebhookEvent.objects.values_list("type", flat=True)) == Counter(announced)
    assert Counter(announced) == {"purchase.succeeded": 2, "balance.low": 1}
    delivered = [headers["Webhook-Id"] for headers, _ in hook.requests]
    assert sorted(delivered) == sorted(WebhookEvent.objects.values_list("public_id", flat=True))
