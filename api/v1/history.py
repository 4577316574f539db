"""The history export: GET /licenses/{id}/history.csv, the dashboard's Download History
streamed as CSV (billing.history.export), under the same per-license export limit."""

import uuid

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from ninja import Query, Router

from api.v1.auth import request_key, request_license
from api.v1.errors import ERRORS, ApiError
from api.v1.formats import LocalDay
from api.v1.transactions import TransactionType
from billing.history.export import (
    HISTORY_HEADER,
    history_csv_lines,
    history_filename,
    ledger_history_csv_pages,
)
from billing.history.transactions import TransactionFilter
from portal.ratelimit import history_export_hit

router = Router()


@router.get(
    "/licenses/{license_id}/history.csv",
    response=ERRORS,
    summary="The transaction history as CSV (streamed), as the dashboard's Download History",
    description=(
        "Limited with the dashboard's Download History: HISTORY_CSV_RATE_LIMIT exports per "
        "key and HISTORY_CSV_LICENSE_RATE_LIMIT per license (web and API together) per "
        "HISTORY_CSV_RATE_WINDOW_SECONDS; beyond, 429 export_limited with Retry-After."
    ),
    openapi_extra={
        "responses": {
            200: {
                "description": "CSV: " + ",".join(HISTORY_HEADER),
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    },
    operation_id="api_v1_history_csv",
)
def history_csv(
    request: HttpRequest,
    license_id: uuid.UUID,
    date_from: LocalDay | None = Query(None, alias="from", description="first local day"),
    date_to: LocalDay | None = Query(
        None, alias="to", description="last local day ('from' after 'to': an empty range)"
    ),
    kind: TransactionType | None = Query(
        None,
        description="a movement (purchase, purchase_refund, credit, usage_refund, usage, "
        "expiry), or refund for both refunds; the CSV's type column names the movement",
    ),
) -> StreamingHttpResponse:
    license = request_license(request, license_id)
    # The dashboard's Download History and this export share one limit per license, so
    # more keys buy no more exports (portal.ratelimit).
    key = request_key(request)
    refusal = history_export_hit(license_id=license.pk, requester=f"key{key.pk}")
    if refusal is not None:
        raise ApiError(
            429, "export_limited", refusal.message, retry_after=refusal.retry_after_seconds
        )
    flt = TransactionFilter.for_local_dates(
        license, date_from=date_from, date_to=date_to, kind=kind or ""
    )
    response = StreamingHttpResponse(
        history_csv_lines(ledger_history_csv_pages(license, flt)),
        content_type="text/csv; charset=utf-8",
    )
    name = history_filename(timezone.now(), license.tzinfo)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
