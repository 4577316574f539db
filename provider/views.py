"""The provider's endpoints: `POST /ingest/v1/usage` (usage pushed in) and
`POST /gate/v1/authorize` (may this license spend?). Each takes a service token
(`Authorization: Bearer tcs_…`), never a customer's API key, and answers JSON; an error is
`{"error": {"code": …, "message": …}}`, as in the customer API."""

import json
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from billing.limits.gate import (
    BAD_REQUEST,
    UNAVAILABLE,
    GateAnswer,
    GateRefusal,
    estimate_parse,
    gate_authorize,
    request_id_check,
)
from billing.money import ZERO
from portal.exceptions import ApplicationError
from provider.selectors import service_token_for_secret
from provider.services import service_token_touch
from usage.services.push import PUSH_MAX_RECORDS, usage_push_record

logger = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="provider"'
    return response


class BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json_body(request: HttpRequest) -> Any:
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise BadRequest(
            415, "unsupported_media_type", "Send JSON: Content-Type: application/json."
        )
    try:
        body = request.body
    except RequestDataTooBig:
        raise BadRequest(413, "too_large", "The body is larger than this endpoint takes.") from None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, "bad_json", f"The body is not JSON: {exc}.") from None


@method_decorator(csrf_exempt, name="dispatch")
class ServiceTokenView(View):
    """A provider endpoint: POST only, a usable service token, then `post`."""

    http_method_names = ["post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        header = request.headers.get("Authorization", "")
        scheme, _, raw = header.partition(" ")
        if request.method != "POST":
            return self.http_method_not_allowed(request, *args, **kwargs)
        try:
            token = service_token_for_secret(raw.strip()) if scheme.lower() == "bearer" else None
            if token is None:
                return error_response(
                    401, "unauthenticated", "Send a service token: Authorization: Bearer <token>."
                )
            service_token_touch(token=token)
        except DatabaseError:
            return self.unavailable()
        try:
            return super().dispatch(request, *args, **kwargs)
        except BadRequest as exc:
            return error_response(exc.status, exc.code, exc.message)

    def unavailable(self) -> HttpResponse:
        return error_response(
            503, "unavailable", "The portal's database is not answering; try again shortly."
        )


class UsagePushView(ServiceTokenView):
    """`POST /ingest/v1/usage` {"records": [...]}: at most PUSH_MAX_RECORDS records of the
    upstream's shape (docs/upstream-api.md), each charged once (usage.services.push)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        body = _json_body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise BadRequest(400, "bad_request", 'The body is {"records": [...]}.')
        if len(records) > PUSH_MAX_RECORDS:
            raise BadRequest(
                413,
                "too_many_records",
                f"A push carries at most {PUSH_MAX_RECORDS} records; this one has "
                f"{len(records)}. Send them in several pushes.",
            )
        try:
            result = usage_push_record(raws=records)
        except ApplicationError as exc:
            raise BadRequest(400, "bad_request", exc.message) from exc
        except DatabaseError:
            logger.exception("push failed")
            return self.unavailable()
        return JsonResponse(
            {
                "accepted": result.accepted,
                "already_known": result.already_known,
                "rejected": [
                    {
                        "index": r.index,
                        "id": r.id,
                        "license": r.license,
                        "code": r.code,
                        "reason": r.reason,
                    }
                    for r in result.rejected
                ],
                "received_at": result.received_at.isoformat(),
            }
        )


def gate_response(answer: GateAnswer, *, status: int = 200, message: str = "") -> JsonResponse:
    body: dict[str, Any] = {
        "allow": answer.allow,
        "reason": answer.reason,
        "available": f"{answer.available:f}",
        "as_of": answer.as_of.isoformat(),
    }
    if answer.allow:
        body["hold_expires_at"] = answer.expires_at.isoformat() if answer.expires_at else None
    else:
        body["message"] = message or answer.message
    if answer.repeated:
        body["repeated"] = True
    return JsonResponse(body, status=status)


def _gate_refused(reason: str, *, status: int, message: str = "") -> JsonResponse:
    return gate_response(
        GateAnswer(False, reason, ZERO, timezone.now()), status=status, message=message
    )


class GateAuthorizeView(ServiceTokenView):
    """`POST /gate/v1/authorize` {"license": KEY, "estimate": "0.010000", "request_id": "…"}:
    {"allow", "reason", "available", "as_of"} (billing.limits.gate). A decision is 200,
    allowed or not; a malformed request 400 (its reason: bad_request, bad_estimate,
    bad_request_id); the database not answering in time 503 (`unavailable`)."""

    def unavailable(self) -> HttpResponse:
        return _gate_refused(UNAVAILABLE, status=503)

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            body = _json_body(request)
        except BadRequest as exc:
            return _gate_refused(BAD_REQUEST, status=exc.status, message=exc.message)
        if not isinstance(body, dict) or not isinstance(body.get("license"), str):
            return _gate_refused(
                BAD_REQUEST,
                status=400,
                message='The body is {"license": KEY, "estimate": "0.010000", "request_id": "…"}.',
            )
        try:
            estimate = estimate_parse(body.get("estimate"))
            request_id = request_id_check(body.get("request_id"))
        except GateRefusal as refusal:
            return _gate_refused(refusal.reason, status=400, message=refusal.message)
        answer = gate_authorize(
            license_key=body["license"], estimate=estimate, request_id=request_id
        )
        return gate_response(answer, status=503 if answer.reason == UNAVAILABLE else 200)
