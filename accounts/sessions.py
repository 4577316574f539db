"""The session and its login in one read (SESSION_ENGINE = "accounts.sessions").

Every page Django serves to a logged-in person starts with two queries of its own: the
session's row, then the login's row. On a dashboard whose sections are kept rendered, those
two were a quarter of the page's CPU and half its round trips to PostgreSQL
(docs/benchmarks.md, part 1). Here the session's row carries its login's id
(accounts.Session.user, written from the session's data on every save), and the session is
read joined to its login, in SQL compiled once per process.

How the login read with the session reaches django.contrib.auth, without rewriting its
checks: AuthenticationMiddleware below names the request's session store for the duration
of auth.get_user(request) only (a context variable), and ModelBackend.get_user takes the
login from that store when it is the one the session names, and otherwise reads it as
Django does. Everything else — which backend logged the person in, the session's hash of
the password (a password changed elsewhere logs this session out), an inactive login
refused — stays Django's own code.
"""

import contextvars
from datetime import datetime
from typing import Any, cast

from django.contrib.auth import SESSION_KEY
from django.contrib.auth import backends as auth_backends
from django.contrib.auth import middleware as auth_middleware
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from accounts.models import Session, User
from portal.db_router import read_alias
from portal.sql import ANY_MOMENT, CompiledQuery

_USER_FIELDS = tuple(field.attname for field in User._meta.concrete_fields)
_ANY_KEY = "stand-in-for-any-session-7734019"  # a stand-in, bound per request


def _session_with_login(*, session_key: str, now: datetime) -> QuerySet:
    return Session.objects.filter(session_key=session_key, expire_date__gt=now).values_list(
        "session_data", *(f"user__{name}" for name in _USER_FIELDS)
    )


_SESSION_WITH_LOGIN = CompiledQuery(
    "session with its login", _session_with_login, session_key=_ANY_KEY, now=ANY_MOMENT
)


def _user_id(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class SessionStore(DatabaseSessionStore):
    """Django's database sessions in accounts.Session, read together with their login."""

    # The login this session's row names, as read with it (None: anonymous, or not read yet).
    user: User | None = None

    @classmethod
    def get_model_class(cls) -> type[Session]:
        return Session

    def create_model_instance(self, data: dict) -> Session:
        session = cast(Session, super().create_model_instance(data))
        session.user_id = _user_id(data.get(SESSION_KEY))
        return session

    def load(self) -> dict:
        self.user = None
        if self.session_key is None:  # no cookie, or not a key at all: nothing to read
            return {}
        rows = _SESSION_WITH_LOGIN.rows(session_key=self.session_key, now=timezone.now())
        row = rows[0] if rows else None
        if row is None:  # expired or unknown: a new session, as Django's store does
            self._session_key = None
            return {}
        data, user_values = row[0], row[1:]
        if user_values[0] is not None:
            # The User fields need no conversion from what psycopg returns (no from_db_value).
            # From the primary: who may see what is never read elsewhere (portal/db_router.py).
            self.user = User.from_db(read_alias(Session), _USER_FIELDS, user_values)
        return self.decode(data)

    def joined_user(self, user_id: Any) -> User | None:
        """The login read with this session, if it is the one `user_id` names."""
        user = self.user
        return user if user is not None and user.pk == user_id else None


# The session store of the request whose login django.contrib.auth is resolving now.
_resolving: contextvars.ContextVar[SessionStore | None] = contextvars.ContextVar(
    "accounts_sessions_resolving", default=None
)


def _user_get(request: HttpRequest) -> Any:
    token = _resolving.set(getattr(request, "session", None))
    try:
        return auth_middleware.get_user(request)  # Django's, cached on the request
    finally:
        _resolving.reset(token)


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, with request.user resolved while the request's session store is named
    (see the module note)."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _user_get(request))  # type: ignore[assignment]


class ModelBackend(auth_backends.ModelBackend):
    """Django's ModelBackend, taking the login read with the session when there is one."""

    def get_user(self, user_id: Any) -> Any:
        store = _resolving.get()
        user = store.joined_user(user_id) if isinstance(store, SessionStore) else None
        if user is None:
            return super().get_user(user_id)
        return user if self.user_can_authenticate(user) else None
