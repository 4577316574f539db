"""portal.sql: a hot query compiled once, each request's values bound in its stand-ins'
places and nowhere else."""

import pytest
from django.db.models import Value

from accounts.models import User
from portal.sql import query_prepare


@pytest.mark.django_db
def test_each_request_gets_its_own_rows_from_sql_compiled_once(member_a, member_b):
    prepared = query_prepare(User.objects.filter(pk=-1), pk=-1)
    for user in (member_a, member_b):
        found = User.objects.raw(prepared.sql, prepared.bind(pk=user.pk))
        assert [u.email for u in found] == [user.email]


def test_a_constant_equal_to_a_stand_in_is_never_taken_for_it():
    # True == 1 in Python: the query's own True must stay True whatever a request binds.
    query = User.objects.filter(pk=1).annotate(flag=Value(True))
    prepared = query_prepare(query, user_id=1)
    assert sorted(prepared.names, key=str) == [None, "user_id"]
    assert sorted(prepared.bind(user_id=42)) == [True, 42]


def test_a_stand_in_the_query_lacks_or_a_value_not_given_is_refused():
    with pytest.raises(AssertionError, match="not among the parameters"):
        query_prepare(User.objects.filter(pk=-1), pk=-1, email="nobody@stand.in")
    prepared = query_prepare(User.objects.filter(pk=-1), pk=-1)
    with pytest.raises(TypeError):
        prepared.bind()
    with pytest.raises(TypeError):
        prepared.bind(pk=1, email="x")
