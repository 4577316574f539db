from collections.abc import Sequence
from smtplib import SMTPServerDisconnected
from typing import NoReturn

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend


class FailingBackend(BaseEmailBackend):
    """An SMTP server that hangs up: what a mail outage looks like to the portal."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> NoReturn:
        raise SMTPServerDisconnected("Connection unexpectedly closed")
