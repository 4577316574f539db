"""A hot query's SQL, built by the ORM once per process (CompiledQuery).

On a page whose content is kept (the dashboard's render cache), building and compiling a
queryset costs more Python than running its SQL: measured side by side, the ORM's own
path per request made the kept dashboard ~2 x slower (docs/architecture.md, "Clever code,
audited"). A query whose shape never changes is therefore built once, with stand-in values
where each request's values go, compiled, and each request binds its own values in their
place.

Django documents neither how a queryset compiles nor the order of its parameters, so an
upgrade could change either. Two guards, both explicit: compiling refuses
(CompiledQueryError) a stand-in that is not a parameter of its own or a parameter that two
stand-ins could be; and every CompiledQuery is listed in QUERIES, which
tests/portal/test_sql.py runs both ways (compiled once, and the ORM's own queryset for the
same values) comparing the rows field by field.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, ValuesListIterable

from portal.db_router import read_alias
from portal.plans import rows_in_index_order, sql_rows_in_index_order

# A stand-in for "the moment of the request", which no query holds as a constant.
ANY_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)

# Every CompiledQuery of the process, each checked against the ORM (tests/portal/test_sql.py).
QUERIES: list["CompiledQuery"] = []

# False: every CompiledQuery runs the ORM's own queryset, built for each request, as
# without this module (bench/audit.py measures the page both ways in one run).
COMPILE_ONCE = True


class CompiledQueryError(Exception):
    """A queryset that cannot be compiled once safely: a request's value could land where
    a constant belongs, or its rows would differ from the ORM's."""


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    names: tuple[str | None, ...]  # the stand-in each parameter is (None: a constant)
    model: type[Model] | None  # rows as instances of this model; None: as tuples (values_list)
    alias_model: type[Model]


class CompiledQuery:
    """The queryset `build(**values)` returns, compiled once from `build(**stand_ins)`.

    `stand_ins` maps each of build's keyword arguments to a value no query holds as a
    constant (a negative id, ANY_MOMENT, a made-up UUID). The queryset yields model
    instances (annotations included) or plain values_list tuples; related objects
    (select_related) and converted values (a field with from_db_value) are not carried
    over, and the comparison with the ORM in the tests would fail on them."""

    def __init__(
        self,
        name: str,
        build: Callable[..., QuerySet],
        *,
        in_index_order: bool = False,
        **stand_ins: Any,
    ) -> None:
        """`in_index_order`: a page of one license's history, planned as portal.plans
        says (no bitmap, no avoidable sort), with or without the planner's statistics."""
        self.name = name
        self.build = build
        self.in_index_order = in_index_order
        self.stand_ins = stand_ins
        QUERIES.append(self)

    def rows(self, **values: Any) -> list:
        """The rows for this request's values (every stand-in's name, no other)."""
        if values.keys() != self.stand_ins.keys():
            raise TypeError(f"{self.name} takes exactly {sorted(self.stand_ins)}")
        if not COMPILE_ONCE:
            queryset = self.build(**values)
            return rows_in_index_order(queryset) if self.in_index_order else list(queryset)
        compiled = self.compiled
        params = [
            p if name is None else values[name]
            for name, p in zip(compiled.names, compiled.params, strict=True)
        ]
        if compiled.model is not None:
            if self.in_index_order:
                raise CompiledQueryError(f"{self.name}: in index order takes values_list rows")
            # A raw queryset is routed like any read of its model (portal/db_router.py).
            return list(compiled.model._default_manager.raw(compiled.sql, params))
        alias = read_alias(compiled.alias_model)
        if self.in_index_order:
            return sql_rows_in_index_order(alias, compiled.sql, params)
        with connections[alias].cursor() as cursor:
            cursor.execute(compiled.sql, params)
            return cursor.fetchall()

    @cached_property
    def compiled(self) -> _Compiled:
        queryset = self.build(**self.stand_ins)
        if queryset._iterable_class is ModelIterable:
            if queryset.query.select_related:
                raise CompiledQueryError(f"{self.name}: related objects are not carried over")
            model = queryset.model
        elif queryset._iterable_class is ValuesListIterable:
            model = None
        else:
            raise CompiledQueryError(f"{self.name}: rows are model instances or values_list")
        sql, params = queryset.query.sql_with_params()
        names: list[str | None] = []
        for param in params:
            matches = [name for name, value in self.stand_ins.items() if _same(param, value)]
            if len(matches) > 1:
                raise CompiledQueryError(f"{self.name}: {param!r} stands for {matches}")
            names.append(matches[0] if matches else None)
        if missing := set(self.stand_ins) - set(names):
            raise CompiledQueryError(
                f"{self.name}: stand-ins not among the parameters: {sorted(missing)}"
            )
        return _Compiled(sql, tuple(params), tuple(names), model, queryset.model)


def _same(param: Any, stand_in: Any) -> bool:
    # True == 1 in Python: a boolean constant must never be taken for an integer stand-in.
    return type(param) is type(stand_in) and param == stand_in
