"""Which database a query goes to: the primary, or the read replica for customer reads.

Nothing reads from the replica unless a view asks for it: `replica_reads` (a decorator for
views; `method_decorator(replica_reads, name="dispatch")` on a class) marks the customer
read pages — the dashboard, All transactions, statements, the CSV history — and the API's
reads. For a GET or HEAD to such a view, `PrimaryReplicaRouter` sends the reads of the
tenant data (REPLICA_APPS: money, usage, payments) to the replica when all of these hold:
- the replica is up and within its lag limits (portal.replica), and
- the session has no write of its own the replica has not replayed yet (read-your-writes:
  `ReadYourWritesMiddleware` notes the primary's WAL position after every request that
  wrote, and the session reads from the primary until the replica has replayed past it, or
  for at most REPLICA_READ_YOUR_WRITES_SECONDS), and
- the query is not inside a transaction on the primary (a read inside a write's
  transaction belongs to that transaction).

Everything else is on the primary: every write, every POST, the staff admin, Celery tasks,
management commands, and who may see what — sessions, logins, memberships, licenses and API
keys are read from the primary, so a revoked key or a removed member is refused at once.
A read on the replica that fails (it stopped under the request) is run again on the primary.
"""

import contextvars
import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse

from portal.replica import (
    REPLICA,
    error_line,
    primary_wal_lsn,
    replica_configured,
    replica_mark_down,
    replica_replayed,
    replica_status,
)

logger = logging.getLogger(__name__)

# The apps whose rows a customer read may take from the replica: what a license's pages and
# API show. Not accounts, api, sessions, auth, otp, axes: who may see what stays on the primary.
REPLICA_APPS = frozenset({"billing", "usage", "payments"})

# The session key of read-your-writes: [the primary's WAL position after the session's last
# write, when (unix time)].
SESSION_KEY = "_replica_wait_for"

_reads_on_replica: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reads_on_replica", default=False
)


class PrimaryReplicaRouter:
    """settings.DATABASE_ROUTERS. Outside a replica_reads view it answers nothing but
    "primary for writes", so Django behaves exactly as with one database."""

    def db_for_read(self, model, **hints):
        if not _reads_on_replica.get() or model._meta.app_label not in REPLICA_APPS:
            return DEFAULT_DB_ALIAS
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return REPLICA

    def db_for_write(self, model, **hints):
        # Explicit: without it Django writes an instance back to the database it was read
        # from, and the replica is read-only.
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same rows, on either server

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


def read_alias(model) -> str:
    """The alias a raw-SQL read of `model`'s table uses (the router's answer): raw cursors
    do not pass through the router, so readers that write SQL themselves ask here."""
    from django.db import router

    return router.db_for_read(model) or DEFAULT_DB_ALIAS


# --- which requests read from the replica --------------------------------------------------


def _session_waits(request: HttpRequest) -> bool:
    """Read-your-writes: whether this session must still read from the primary."""
    session = getattr(request, "session", None)
    if session is None or not session.get(SESSION_KEY):
        return False
    lsn, written_at = session[SESSION_KEY]
    expired = time.time() - written_at > settings.REPLICA_READ_YOUR_WRITES_SECONDS
    if expired or replica_replayed(lsn):
        del session[SESSION_KEY]
        return False
    return True


def _replica_eligible(request: HttpRequest) -> bool:
    if not replica_configured() or request.method not in ("GET", "HEAD"):
        return False
    if _session_waits(request):
        return False
    return replica_status().readable


def _in_context(chunks: Iterable[Any], on_replica: bool) -> Iterator[Any]:
    # A streamed body (the CSV history) is produced after the view has returned: each chunk
    # is fetched with the view's choice of database in force again.
    iterator = iter(chunks)
    while True:
        token = _reads_on_replica.set(on_replica)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            _reads_on_replica.reset(token)
        yield chunk


def replica_reads(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Mark a view's reads as replica-eligible (see the module's docstring)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not _replica_eligible(request):
            return view(request, *args, **kwargs)
        on_replica = True
        token = _reads_on_replica.set(on_replica)
        try:
            response = view(request, *args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            replica = connections[REPLICA]
            if not replica.errors_occurred:
                raise  # the primary's error: nothing to fall back to
            # The replica failed under this request (stopped, or cancelled the read for a
            # conflict with replay): a GET only reads, so run it again on the primary, and
            # leave a replica that no longer answers alone for a while. (A count the GET keeps
            # on the primary, the CSV download's rate limit, is then counted twice.)
            if replica.connection is None or not replica.is_usable():
                replica.close()
                replica_mark_down(error_line(exc))
            on_replica = False
            _reads_on_replica.reset(token)
            token = _reads_on_replica.set(on_replica)
            response = view(request, *args, **kwargs)
        finally:
            _reads_on_replica.reset(token)
        if isinstance(response, StreamingHttpResponse):
            chunks = cast(Iterable[bytes], response.streaming_content)
            response.streaming_content = _in_context(chunks, on_replica)
        return response

    return wrapped


# --- read-your-writes ----------------------------------------------------------------------

_READ_ONLY = re.compile(
    r"\s*(?:SELECT|SHOW|SET|EXPLAIN|SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT|DECLARE|FETCH|CLOSE)\b",
    re.IGNORECASE,
)
_MODIFYING = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)


def statement_writes(sql: str) -> bool:
    """Whether a statement may change data. Anything not known to be a read counts as a
    write (a write missed would let a person miss their own change; one counted too many
    costs a few reads on the primary). SELECT … FOR UPDATE locks, the UPDATE follows."""
    if sql.lstrip()[:4].upper() == "WITH":
        return _MODIFYING.search(sql) is not None
    return _READ_ONLY.match(sql) is None


class _WriteWatch:
    """An execute wrapper on the primary's connection: notes whether the request wrote."""

    def __init__(self):
        self.wrote = False

    def __call__(self, execute, sql, params, many, context):
        if not self.wrote and statement_writes(sql):
            self.wrote = True
        return execute(sql, params, many, context)


class ReadYourWritesMiddleware:
    """After a request that wrote on the primary, the session remembers the primary's WAL
    position (taken after the view, so after every commit it made); replica_reads views
    read from the primary for that session until the replica has replayed past it.

    Listed after the session and authentication middleware, so the session's own save (at
    the end of every request) is not counted as a write; the login, which cycles the
    session inside its view, is.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_configured():
            return self.get_response(request)
        watch = _WriteWatch()
        with connections[DEFAULT_DB_ALIAS].execute_wrapper(watch):
            response = self.get_response(request)
        session = getattr(request, "session", None)
        # A request without a session of a person (the API's keys, Stripe's webhook) has
        # nowhere to remember it, and is not shown its own write later.
        if watch.wrote and session is not None and not session.is_empty():
            try:
                session[SESSION_KEY] = [primary_wal_lsn(), time.time()]
            except (OperationalError, InterfaceError) as exc:
                logger.warning("replica: could not read the primary's WAL position: %s", exc)
        return response
