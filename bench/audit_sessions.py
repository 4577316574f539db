"""Part 7's sessions with their reads compiled once (SESSION_ENGINE = "bench.audit_sessions"):
Django's two reads, the session's row then the login's, each by a portal.sql.CompiledQuery,
through the places Django documents for them (a session store's load, a backend's
get_user). What that would buy beside today's Django reads (accounts/sessions.py)."""

from datetime import datetime
from typing import Any

from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.db.models import QuerySet

import accounts.sessions
from accounts.models import Session, User
from portal.sql import ANY_MOMENT, CompiledQuery


def _session(*, session_key: str, now: datetime) -> QuerySet:
    return Session.objects.filter(session_key=session_key, expire_date__gt=now).values_list(
        "session_data"
    )


def _login(*, pk: int) -> QuerySet[User]:
    return User.objects.filter(pk=pk)


_SESSION = CompiledQuery("bench: session", _session, session_key="bench-any-key", now=ANY_MOMENT)
_LOGIN = CompiledQuery("bench: login", _login, pk=-7_734_019)


class SessionStore(accounts.sessions.SessionStore):
    def load(self) -> dict:
        from django.utils import timezone

        if self.session_key is None:
            return {}
        rows = _SESSION.rows(session_key=self.session_key, now=timezone.now())
        if not rows:
            self._session_key = None
            return {}
        return self.decode(rows[0][0])


class ModelBackend(DjangoModelBackend):
    def get_user(self, user_id: Any) -> Any:
        rows = _LOGIN.rows(pk=int(user_id))
        user = rows[0] if rows else None
        return user if user is not None and self.user_can_authenticate(user) else None
