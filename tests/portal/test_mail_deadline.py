"""Email sending ends by a wall-clock deadline whatever the mail server does (issue 29): a
server that greets a byte at a time never trips the per-read EMAIL_TIMEOUT, and held the
worker (and the alert's lease) for as long as it liked."""

import smtplib
import subprocess
import time

import pytest
from django.core.mail import send_mail
from django.utils import timezone

from billing.alerts.emails import balance_alert_message, balance_alert_send
from billing.models import BalanceAlert
from tests.hostile import DribblingMailServer
from tests.ledger import buy, record_usage
from tests.processes import PYTHON, ROOT, child_env


@pytest.fixture
def dribbling_mail(settings):
    settings.EMAIL_BACKEND = "portal.mail.DeadlineEmailBackend"
    settings.EMAIL_TIMEOUT = 5  # per read: a byte every 0.2 s never trips it
    settings.EMAIL_DEADLINE_SECONDS = 1.0
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    with DribblingMailServer(interval=0.2, seconds=30) as server:
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        yield server


def test_a_dribbling_mail_server_is_cut_off_by_the_deadline(dribbling_mail):
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPException, match="within 1 s"):
        send_mail("Hello", "Body", "noreply@portal.example", ["ann@alpha.example"])
    assert time.monotonic() - started < 3  # not the 30 s the greeting would take
    assert dribbling_mail.requests == 1


@pytest.mark.django_db
def test_a_balance_alert_to_a_dribbling_mail_server_stays_owed(license_a, dribbling_mail):
    buy(license_a, "1.50", "pay_1")
    record_usage(license_a, "r1", at=timezone.now(), images=11_000)  # below $1.00, live
    alert = BalanceAlert.objects.for_license(license_a).get()
    balance_alert_message(alert)  # the first rendering's imports and templates, not timed
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPException):
        balance_alert_send(alert_id=alert.pk)
    assert time.monotonic() - started < 5  # not the 30 s the greeting would take
    alert.refresh_from_db()
    assert alert.sent_at is None and alert.attempts == 1 and "within 1 s" in alert.last_error


def test_an_smtp_email_url_sends_through_the_deadline_backend():
    result = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c",
         "from django.conf import settings; print(settings.EMAIL_BACKEND)"],
        cwd=ROOT, env=child_env(EMAIL_URL="smtp://mail.example:25"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "portal.mail.DeadlineEmailBackend"
