"""The accounts app's background work: the password reset email (accounts.password_reset)."""

import smtplib

from celery import shared_task

from accounts.password_reset import password_reset_send


@shared_task(
    name="accounts.password_reset_send",
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=5,
    max_retries=3,
)
def password_reset_send_task(email: str) -> int:
    return password_reset_send(email=email)
