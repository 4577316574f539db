"""Email over SMTP with a wall-clock deadline for the whole sending (docs/security.md).

Django's SMTP backend has a timeout per socket operation (EMAIL_TIMEOUT): a mail server
that sends its greeting or its replies a byte at a time never trips it. This backend cuts
the connection once EMAIL_DEADLINE_SECONDS have passed since `send_messages` began — it
shuts the socket down, which wakes the blocked read or write — so the send fails (an
SMTPException: the alert stays owed, the task retries) instead of holding the worker.
settings.py uses it wherever EMAIL_URL names Django's SMTP backend.

smtplib opens its socket in `_get_socket`, the method its own SMTP_SSL and LMTP override
for that purpose; the subclasses below note the socket there, before any byte is read.
"""

import os
import smtplib
import socket
import threading
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend

_local = threading.local()


class _Watchdog:
    """Shuts down the sockets it was shown once `seconds` have passed, unless finished."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._fds: list[int] = []
        self._done = False
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        # The descriptor stays the same when STARTTLS or SSL wraps the socket.
        with self._lock:
            if not self._done:
                self._fds.append(sock.fileno())

    def finish(self) -> None:
        """Called before the connection closes: a descriptor closed here could be reused
        by another socket of the process, which must never be shut down."""
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            for fd in self._fds:
                try:
                    cut = socket.socket(fileno=os.dup(fd))
                except OSError:
                    continue
                try:
                    cut.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                finally:
                    cut.close()


def _watch(sock: socket.socket) -> None:
    watchdog = getattr(_local, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(sock)


class _SMTP(smtplib.SMTP):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        _watch(sock)
        return sock


class _SMTP_SSL(smtplib.SMTP_SSL):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = smtplib.SMTP._get_socket(self, host, port, timeout)  # type: ignore[attr-defined]
        _watch(sock)  # before the TLS handshake, which may be dribbled too
        return self.context.wrap_socket(sock, server_hostname=self._host)  # type: ignore[attr-defined]


class DeadlineEmailBackend(EmailBackend):
    """Django's SMTP backend, every sending of which ends within EMAIL_DEADLINE_SECONDS."""

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return _SMTP_SSL if self.use_ssl else _SMTP

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        watchdog = _Watchdog(settings.EMAIL_DEADLINE_SECONDS)
        previous = getattr(_local, "watchdog", None)
        _local.watchdog = watchdog
        watchdog.start()
        try:
            sent = super().send_messages(email_messages)
        except Exception as exc:
            if watchdog.fired:
                raise smtplib.SMTPServerDisconnected(
                    f"no complete exchange within {settings.EMAIL_DEADLINE_SECONDS:g} s ({exc})"
                ) from exc
            raise
        finally:
            watchdog.finish()
            _local.watchdog = previous
        if watchdog.fired and not self.fail_silently:
            raise smtplib.SMTPServerDisconnected(
                f"no complete exchange within {settings.EMAIL_DEADLINE_SECONDS:g} s"
            )
        return sent

    def close(self) -> None:
        watchdog = getattr(_local, "watchdog", None)
        if watchdog is not None:
            watchdog.finish()
        super().close()
