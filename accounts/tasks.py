"""The accounts app's background work: the password reset email (accounts.password_reset)
and the removal of sessions past their expiry."""

import smtplib

from celery import shared_task

from accounts.password_reset import password_reset_send
from accounts.sessions import SessionStore


@shared_task(
    name="accounts.password_reset_send",
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=5,
    max_retries=3,
)
def password_reset_send_task(email: str) -> int:
    return password_reset_send(email=email)


@shared_task(name="accounts.clear_expired_sessions")
def sessions_clear_expired_task() -> None:
    """Expired sessions are refused when read; this removes their rows, which would
    otherwise pile up (one per login and browser)."""
    SessionStore.clear_expired()
