"""Password reset that tells an attacker nothing and cannot be turned into a weapon
(issue 18; OWASP ASVS 2.5, 2.2.1).

- Throttled per address (the client's IP) and per target (the email typed, whether or not
  a login has it): a sprayer, or someone flooding one person's mailbox, is told how long to
  wait instead of being answered.
- The same work, response and page whether or not a login has that email: the request
  only counts and hands the email to a worker (portal.tasks.task_enqueue); the worker looks
  the login up and sends the link. No query for the login in the request, no mail sent
  while the person waits.
- The link is built from settings.PORTAL_BASE_URL, never from the request's Host header (a
  forged Host would otherwise put the attacker's site in the link, with the token in it).
"""

import hashlib
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm

from portal.ratelimit import rate_limit_hit, wait_message

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 3600
EMAIL_TEMPLATE = "accounts/email/password_reset.txt"
SUBJECT_TEMPLATE = "accounts/email/password_reset_subject.txt"


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "backslashreplace")).hexdigest()
    return f"password-reset:{kind}:{digest}"


def password_reset_wait_message(*, email: str, address: str) -> str:
    """Count this request per address and per email; empty when it may go ahead, otherwise
    what to tell the person (the same for an email with or without a login)."""
    checks = (
        ("from your address", "address", address, settings.PASSWORD_RESET_LIMIT_PER_ADDRESS),
        ("for this email", "email", email.strip().lower(), settings.PASSWORD_RESET_LIMIT_PER_EMAIL),
    )
    for where, kind, value, limit in checks:
        if not value:
            continue
        decision = rate_limit_hit(key=_key(kind, value), limit=limit, window_seconds=WINDOW_SECONDS)
        if not decision.allowed:
            return wait_message(
                reason=f"Too many password reset requests {where}",
                action="ask",
                seconds=decision.retry_after_seconds,
            )
    return ""


def password_reset_send(*, email: str) -> int:
    """Send the reset link to every active login with this email (Django's token, one use);
    how many were sent (0 when no login has it). Runs in a worker."""
    form = PasswordResetForm(data={"email": email})
    if not form.is_valid():
        return 0
    base = urlsplit(settings.PORTAL_BASE_URL)
    users = list(form.get_users(form.cleaned_data["email"]))
    form.save(
        domain_override=base.netloc,
        use_https=base.scheme == "https",
        subject_template_name=SUBJECT_TEMPLATE,
        email_template_name=EMAIL_TEMPLATE,
        extra_email_context={"base_url": settings.PORTAL_BASE_URL.rstrip("/")},
    )
    return len(users)
