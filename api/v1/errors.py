"""The API's one error shape: `{"error": {"code": …, "message": …}}` for every refusal,
the exception that carries it (ApiError), its schema in the OpenAPI document, and the
handlers that turn ApiError and django-ninja's own errors into it."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import Field


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class ErrorBody(Schema):
    code: str = Field(
        examples=["not_found"],
        description=(
            "invalid_request, invalid_cursor (400); unauthenticated, key_revoked, key_expired "
            "(401); license_closed (403: the license is closed, on every path); not_found "
            "(404); not_ready (409); rate_limited, export_limited (429, with Retry-After)"
        ),
    )
    message: str = Field(description="what happened and what to do, for people")


class ErrorOut(Schema):
    error: ErrorBody


ERRORS: dict[int, Any] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    429: ErrorOut,
}


def error_handlers_install(api: NinjaAPI) -> None:
    """Answer ApiError and django-ninja's own errors in the one shape, on `api`."""

    def error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
        return api.create_response(
            request, {"error": {"code": code, "message": message}}, status=status
        )

    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = error(request, exc.status, exc.code, exc.message)
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
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return error(request, 400, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        code = "not_found" if exc.status_code == 404 else "invalid_request"
        return error(request, exc.status_code, code, str(exc))
