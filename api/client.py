"""The portal calling its own API as a program would (the Test API page's check)."""

import time
from dataclasses import dataclass

import httpx
from django.conf import settings

from api.selectors import api_key_for_secret


@dataclass(frozen=True)
class ApiCheck:
    ok: bool
    status_code: int | None
    latency_ms: float
    summary: str  # plain words; never the key


def portal_api_check(*, raw_key: str, license_public_id: str) -> ApiCheck:
    """GET the license's balance from PORTAL_API_BASE_URL with the key, over HTTP."""
    raw_key = raw_key.strip()
    key = api_key_for_secret(raw_key)
    name = f"key {key.display}" if key is not None else "that key"
    url = f"{settings.PORTAL_API_BASE_URL.rstrip('/')}/licenses/{license_public_id}/balance"
    started = time.monotonic()
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {raw_key}"}, timeout=5.0)
    except httpx.HTTPError as exc:
        latency = (time.monotonic() - started) * 1000
        return ApiCheck(
            False, None, latency, f"The portal's API could not be reached ({type(exc).__name__})."
        )
    latency = (time.monotonic() - started) * 1000
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200:
        return ApiCheck(
            True, 200, latency, f"With {name} the API answered: balance ${body.get('balance')}."
        )
    message = (body.get("error") or {}).get("message", "") if isinstance(body, dict) else ""
    return ApiCheck(
        False,
        response.status_code,
        latency,
        f"With {name} the API answered {response.status_code}: {message}",
    )
