"""portal.sql: a hot query compiled once gives exactly the rows the ORM's own queryset gives
for the same values, each request's values bound in their stand-ins' places and nowhere
else. The first test is the one a Django upgrade would break: it runs every CompiledQuery
of the app both ways and compares the rows field by field."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.db.models import QuerySet, Value
from django.urls import get_resolver
from django.utils import timezone

from accounts.models import Membership, User
from portal import sql
from portal.sql import QUERIES, CompiledQuery, CompiledQueryError
from tests.accounts.factories import MembershipFactory
from tests.ledger import buy, charge, record
from usage.models import SyncState


def _fields(row: Any) -> Any:
    """A row as comparable data: a model instance's type and every attribute (fields and
    annotations) with its value's type; a tuple's values with theirs."""
    if isinstance(row, tuple):
        return [(type(value), value) for value in row]
    attributes = {k: (type(v), v) for k, v in vars(row).items() if not k.startswith("_")}
    return type(row), attributes


@pytest.mark.django_db
def test_every_compiled_query_gives_the_orm_s_own_rows_field_by_field(
    license_a, license_b, member_a
):
    get_resolver().url_patterns  # noqa: B018  every view's module, and its compiled queries
    now = timezone.now()
    today = license_a.local_date(now)
    buy(license_a, "25.00")  # a totals row for the dashboard basis
    # Usage in the last days and in months before them: both kinds of chart bucket.
    charge(
        license_a,
        *[record(now - timedelta(days=days), input_tokens=1_000, images=3) for days in (1, 45, 90)],
    )
    SyncState.objects.create(license=license_a, last_success_at=now - timedelta(minutes=3))
    MembershipFactory(license=license_b, user=member_a, role="member")  # a second license
    # Each query's values: some that find rows, some that find none.
    cases: dict[str, list[dict[str, Any]]] = {
        "license access": [
            {"user_id": member_a.pk, "public_id": license_a.public_id},
            {"user_id": member_a.pk, "public_id": uuid4()},
            {"user_id": -5, "public_id": license_a.public_id},
        ],
        "dashboard basis": [
            {"license_id": license_a.pk, "moment": now},
            {"license_id": license_b.pk, "moment": now},
        ],
        "dashboard chart window": [
            {
                "license_id": license.pk,
                "start": today - timedelta(days=365),
                "end": today,
                "days_from": today - timedelta(days=29),
            }
            for license in (license_a, license_b)
        ],
        "dashboard recent entries": [
            {"license_id": license_a.pk},
            {"license_id": license_b.pk},
        ],
    }
    # A new CompiledQuery needs its cases here.
    assert sorted(q.name for q in QUERIES) == sorted(cases)
    found = 0
    for query in QUERIES:
        for values in cases[query.name]:
            compiled = [_fields(row) for row in query.rows(**values)]
            framework = [_fields(row) for row in query.build(**values)]
            assert compiled == framework, (query.name, values)
            found += len(compiled)
    assert found >= 10  # not only empty answers were compared


def _query(queryset_of: Callable[..., QuerySet], **stand_ins: Any) -> CompiledQuery:
    """A CompiledQuery outside QUERIES (the app's own are compared in the first test)."""
    query = CompiledQuery("test", queryset_of, **stand_ins)
    QUERIES.remove(query)
    return query


@pytest.mark.django_db
def test_each_request_gets_its_own_rows_from_sql_compiled_once(member_a, member_b):
    query = _query(lambda *, pk: User.objects.filter(pk=pk), pk=-1)
    for user in (member_a, member_b):
        assert [u.email for u in query.rows(pk=user.pk)] == [user.email]


@pytest.mark.django_db
def test_switched_off_it_is_the_orm_s_own_queryset_built_per_request(member_a, monkeypatch):
    # What the bench's "off" measures (bench/audit.py).
    monkeypatch.setattr(sql, "COMPILE_ONCE", False)
    query = _query(lambda *, pk: User.objects.filter(pk=pk), pk=-1)
    assert query.rows(pk=member_a.pk) == [member_a]
    assert "compiled" not in vars(query)  # never compiled


def test_a_constant_equal_to_a_stand_in_is_never_taken_for_it():
    # True == 1 in Python: the query's own True must stay True whatever a request binds.
    query = _query(
        lambda *, user_id: User.objects.filter(pk=user_id).annotate(flag=Value(True)),
        user_id=1,
    )
    assert sorted(query.compiled.names, key=str) == [None, "user_id"]


def test_a_query_that_cannot_be_compiled_once_safely_is_refused():
    missing = _query(lambda *, pk, email: User.objects.filter(pk=pk), pk=-1, email="no@stand.in")
    with pytest.raises(CompiledQueryError, match="not among the parameters"):
        missing.compiled  # noqa: B018
    twice = _query(lambda *, a, b: User.objects.filter(pk=a), a=-1, b=-1)
    with pytest.raises(CompiledQueryError, match="stands for"):
        twice.compiled  # noqa: B018
    related = _query(lambda *, pk: Membership.objects.filter(pk=pk).select_related("user"), pk=-1)
    with pytest.raises(CompiledQueryError, match="related"):
        related.compiled  # noqa: B018
    flat = _query(lambda *, pk: User.objects.filter(pk=pk).values("email"), pk=-1)
    with pytest.raises(CompiledQueryError, match="values_list"):
        flat.compiled  # noqa: B018


def test_a_request_gives_every_value_and_no_other():
    query = _query(lambda *, pk: User.objects.filter(pk=pk), pk=-1)
    with pytest.raises(TypeError):
        query.rows()
    with pytest.raises(TypeError):
        query.rows(pk=1, email="x")
