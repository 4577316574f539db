"""A request names only the query parameters its operation declares in the OpenAPI
document: any other is refused (400 invalid_request, `field` naming it), never ignored,
so a misspelt filter (`?serivce=ai_data`) cannot silently widen an answer. One check for
every operation, read from the document itself, so the two cannot disagree."""

import re
from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI

from api.v1.errors import ApiError


def undeclared_query_refusal_install(api: NinjaAPI) -> None:
    """Refuse, on every operation of `api`, a query parameter the document does not
    declare for it (after authentication and the declared parameters' own checks)."""

    @cache
    def declared() -> list[tuple[re.Pattern[str], frozenset[str]]]:
        """Each path of the document as a pattern, with its operations' query names."""
        paths = []
        for template, operations in api.get_openapi_schema()["paths"].items():
            names = frozenset(
                parameter["name"]
                for operation in operations.values()
                for parameter in operation.get("parameters", ())
                if parameter["in"] == "query"
            )
            literal = re.split(r"\{[^}]+\}", template)
            paths.append((re.compile("[^/]+".join(map(re.escape, literal))), names))
        return paths

    def query_names(path: str) -> frozenset[str]:
        for pattern, names in declared():
            if pattern.fullmatch(path):
                return names
        return frozenset()

    def refuse_undeclared(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            names = query_names(request.path)
            for name in request.GET:
                if name not in names:
                    known = ", ".join(sorted(names)) or "none"
                    raise ApiError(
                        400,
                        "invalid_request",
                        f"{name}: not a parameter of this operation (its parameters: {known}).",
                        field=name,
                    )
            return view(request, *args, **kwargs)

        return checked

    api.add_decorator(refuse_undeclared, mode="operation")
