"""The API's one error shape: `{"error": {"code": …, "message": …, "field": …}}` for every
4xx it answers — its own refusals (ApiError), django-ninja's (validation, authentication),
a method other than GET (405) and a path it does not serve (404) — with the schema and the
per-status wording and headers the OpenAPI document shows for it."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.http.response import HttpResponseBase
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import Field

from api.v1.formats import PATTERN_WORDS


class ApiError(Exception):
    """A refusal in the one shape: `field` names the parameter at fault, if one is."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.retry_after = field, retry_after


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema}


# What each status means here, its codes and its headers: the document's wording for every
# operation that answers it (error_responses_document), one place.
ERROR_STATUSES: dict[int, tuple[str, dict[str, dict[str, Any]]]] = {
    400: (
        "invalid_request: a parameter is not as this document describes it, or is not one "
        "of the operation's (`field` names it); invalid_cursor: the cursor is not one this "
        "API gave out",
        {},
    ),
    401: (
        "unauthenticated (no key, or not a valid one), key_revoked, key_expired",
        {"WWW-Authenticate": _header("the scheme to authenticate with", {"type": "string"})},
    ),
    403: ("license_closed: the license is closed; its key is refused on every path", {}),
    404: (
        "not_found: no such license for this key (another license's is not found either), "
        "no such transaction, no statement for that month (it has not begun), or no such path",
        {},
    ),
    405: (
        "method_not_allowed: the API only reads; every operation is a GET",
        {"Allow": _header("the methods this path serves: GET", {"type": "string"})},
    ),
    409: ("not_ready: usage by endpoint is still being prepared for the license's history", {}),
    429: (
        "rate_limited: more requests than the key's allowance; export_limited: more history "
        "exports than the license's or the key's allowance. Retry-After says when to retry",
        {
            "Retry-After": _header(
                "seconds to wait before retrying", {"type": "integer", "minimum": 1}
            )
        },
    ),
}


class ErrorBody(Schema):
    code: str = Field(
        examples=["not_found"],
        description=(
            "invalid_request, invalid_cursor (400); unauthenticated, key_revoked, key_expired "
            "(401); license_closed (403: the license is closed, on every path); not_found "
            "(404); method_not_allowed (405); not_ready (409); rate_limited, export_limited "
            "(429, with Retry-After)"
        ),
    )
    message: str = Field(description="what happened and what to do, for people")
    field: str | None = Field(
        None, description="the parameter at fault (400), as the request names it"
    )


class ErrorOut(Schema):
    error: ErrorBody


# A parameter whose refusal has a code of its own (400 invalid_request otherwise).
PARAMETER_CODES = {"cursor": "invalid_cursor"}

# The refusals every operation can answer; usage adds 409.
ERRORS: dict[int, Any] = {status: ErrorOut for status in (400, 401, 403, 404, 405, 429)}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return {"error": body}


def error_responses_document(schema: dict[str, Any]) -> None:
    """Give every operation's error responses of the OpenAPI document `schema` their
    meaning and headers (ERROR_STATUSES)."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                meaning = ERROR_STATUSES.get(int(status))
                if meaning is None:
                    continue
                description, headers = meaning
                response["description"] = description
                if headers:
                    response["headers"] = headers


def error_handlers_install(api: NinjaAPI) -> None:
    """Answer ApiError and django-ninja's own errors in the one shape, on `api`."""

    def error(
        request: HttpRequest, status: int, code: str, message: str, field: str | None = None
    ) -> HttpResponse:
        return api.create_response(request, error_body(code, message, field), status=status)

    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = error(request, exc.status, exc.code, exc.message, exc.field)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        if exc.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
        response = error(
            request, 401, "unauthenticated", "Send an API key: Authorization: Bearer <key>."
        )
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @api.exception_handler(ValidationError)
    def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        first = exc.errors[0] if exc.errors else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        words = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if first.get("type") == "string_pattern_mismatch":
            words = PATTERN_WORDS.get(first.get("ctx", {}).get("pattern", ""), words)
        message = f"{field or 'request'}: {words}"
        code = PARAMETER_CODES.get(field or "", "invalid_request")
        return error(request, 400, code, message, field)

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        code = "not_found" if exc.status_code == 404 else "invalid_request"
        return error(request, exc.status_code, code, str(exc))


def urls_in_shape(
    api: NinjaAPI,
) -> tuple[list[URLPattern | URLResolver], str, str]:
    """`api.urls`, answering in the one shape where django-ninja answers on its own: a 405
    for another method than an operation's (with Allow), a 404 at the API's root and at
    any path under it that no operation serves."""
    patterns, app_name, namespace = api.urls

    def shaped(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                response = view(request, *args, **kwargs)
            except Http404:
                return not_found(request)
            if isinstance(response, HttpResponseNotAllowed):
                refused = api.create_response(
                    request,
                    error_body(
                        "method_not_allowed",
                        f"{request.method} is not an operation here; use {response['Allow']}.",
                    ),
                    status=405,
                )
                refused["Allow"] = response["Allow"]
                return refused
            return response

        return answer

    @csrf_exempt  # a POST to no path is a 404 here, not the CSRF page
    def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return api.create_response(
            request,
            error_body("not_found", "No such path in this API: see /api/v1/openapi.json."),
            status=404,
        )

    shaped_patterns: list[URLPattern | URLResolver] = [
        URLPattern(p.pattern, shaped(p.callback), p.default_args, p.name)
        if isinstance(p, URLPattern)
        else p
        for p in patterns
    ]
    shaped_patterns.append(re_path(r"", shaped(not_found), name="api-not-found"))
    return shaped_patterns, app_name, namespace
