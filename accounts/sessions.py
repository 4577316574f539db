"""Django's database sessions, kept in accounts.Session (SESSION_ENGINE = "accounts.sessions").

accounts.Session is Django's session with the login's id beside its data, extended the way
Django documents ("Extending database-backed session engines": a model of one's own,
get_model_class and create_model_instance), so that deleting a login deletes its sessions.
Reading a session, and the login it names, is Django's own code (its store's load, its
AuthenticationMiddleware and ModelBackend): reading both in one query, or compiling the two
reads once, bought a kept dashboard less than the threshold in docs/architecture.md
("Clever code, audited").
"""

from typing import Any, cast

from django.contrib.auth import SESSION_KEY
from django.contrib.auth import backends as auth_backends
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from accounts.models import Session

# Django's ModelBackend, unchanged. Every session a login opened names the backend that
# logged it in by this path (AUTHENTICATION_BACKENDS lists it); another path would log
# everyone out once.
ModelBackend = auth_backends.ModelBackend


def _user_id(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class SessionStore(DatabaseSessionStore):
    """Django's database sessions, in accounts.Session."""

    @classmethod
    def get_model_class(cls) -> type[Session]:
        return Session

    def create_model_instance(self, data: dict) -> Session:
        session = cast(Session, super().create_model_instance(data))
        session.user_id = _user_id(data.get(SESSION_KEY))
        return session
