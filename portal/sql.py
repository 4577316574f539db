"""SQL that the ORM builds once per process, for the queries every request runs.

On a page whose content is kept (the dashboard's render cache), building and compiling a
queryset costs more Python than running its SQL (docs/benchmarks.md, part 1). A query whose
shape never changes is therefore compiled once, with stand-in values where each request's
values go, and each request binds its own values in their place.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.db.models import QuerySet

# A stand-in for "the moment of the request", which no query holds as a constant.
ANY_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PreparedQuery:
    """A queryset's SQL and parameters, with the name of the stand-in each parameter is
    (None for the query's own constants)."""

    sql: str
    params: tuple
    names: tuple[str | None, ...]

    def bind(self, **values: Any) -> list:
        """The parameters with each stand-in replaced by this request's value; every stand-in
        must be given."""
        if values.keys() != self.stand_ins:
            raise TypeError(f"bind() takes exactly {sorted(self.stand_ins)}")
        return [
            p if name is None else values[name]
            for name, p in zip(self.names, self.params, strict=True)
        ]

    @cached_property
    def stand_ins(self) -> set[str]:
        return {name for name in self.names if name}


def query_prepare(queryset: QuerySet, **stand_ins: Any) -> PreparedQuery:
    """Compiles `queryset`, built with `stand_ins` (name -> a value no query holds as a
    constant: a negative id, 1970, a made-up UUID), into a PreparedQuery.

    Each stand-in must be a parameter of its own, at least once, and no parameter may equal
    two of them; otherwise a request's value could land where a constant belongs."""
    sql, params = queryset.query.sql_with_params()
    names: list[str | None] = []
    for param in params:
        matches = [name for name, value in stand_ins.items() if _same(param, value)]
        assert len(matches) <= 1, (param, matches)
        names.append(matches[0] if matches else None)
    missing = set(stand_ins) - set(names)
    assert not missing, f"stand-ins not among the parameters: {sorted(missing)}"
    return PreparedQuery(sql=sql, params=tuple(params), names=tuple(names))


def _same(param: Any, stand_in: Any) -> bool:
    # True == 1 in Python: a boolean constant must never be taken for an integer stand-in.
    return type(param) is type(stand_in) and param == stand_in
