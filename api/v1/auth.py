"""Who is asking: the bearer API key (401 unknown, revoked or expired; 403 a closed
license's; 429 over its rate), and the license it may read (404 any other)."""

import uuid

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts.models import License
from api.models import ApiKey
from api.selectors import api_key_for_secret
from api.services import api_key_touch
from api.v1.errors import ApiError
from portal.ratelimit import rate_limit_hit


class ApiKeyAuth(HttpBearer):
    openapi_description = "An API key made in the portal (API keys page): tcp_…"

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        key = api_key_for_secret(token)
        if key is None:
            raise ApiError(401, "unauthenticated", "The API key is not valid.")
        if key.revoked_at is not None:
            raise ApiError(401, "key_revoked", f"The API key {key.display} was revoked.")
        if not key.is_usable():
            raise ApiError(401, "key_expired", f"The API key {key.display} has expired.")
        # What the license's pages refuse, its API refuses, on every path (accounts.models).
        refusal = key.license.access_refusal()
        if refusal is not None:
            raise ApiError(403, refusal.code, refusal.message)
        decision = rate_limit_hit(
            key=f"api:{key.pk}",
            limit=settings.API_RATE_LIMIT,
            window_seconds=settings.API_RATE_WINDOW_SECONDS,
        )
        if not decision.allowed:
            raise ApiError(
                429,
                "rate_limited",
                f"Requests are limited to {settings.API_RATE_LIMIT} per "
                f"{settings.API_RATE_WINDOW_SECONDS} seconds per key; retry in "
                f"{decision.retry_after_seconds} s.",
                retry_after=decision.retry_after_seconds,
            )
        api_key_touch(key=key)
        return key


def request_key(request: HttpRequest) -> ApiKey:
    """The key ApiKeyAuth accepted for this request."""
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    return key


def request_license(request: HttpRequest, license_id: uuid.UUID) -> License:
    """The license in the path, if the request's key reads it; 404 otherwise, as for a
    license that does not exist."""
    key = request_key(request)
    if key.license.public_id != license_id or ApiKey.Scope.READ not in key.scopes:
        raise ApiError(404, "not_found", "No such license.")
    return key.license
