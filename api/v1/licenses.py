"""The licenses a key reads: GET /licenses and /licenses/{id} (name, type, status,
timezone, member since, masked key)."""

import uuid
from datetime import date
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from accounts.models import License
from api.v1.auth import request_key, request_license
from api.v1.errors import ERRORS

router = Router()


class LicenseOut(Schema):
    id: uuid.UUID
    name: str
    type: str
    status: str
    timezone: str
    member_since: date
    key_masked: str


class LicenseListOut(Schema):
    data: list[LicenseOut]


def _license_out(license: License) -> dict[str, Any]:
    return {
        "id": license.public_id,
        "name": license.name,
        "type": license.license_type,
        "status": license.status,
        "timezone": license.timezone,
        "member_since": license.member_since,
        "key_masked": license.masked_key,
    }


@router.get(
    "/licenses",
    response={200: LicenseListOut, **ERRORS},
    summary="Licenses this key reads",
    operation_id="api_v1_licenses_list",
)
def licenses_list(request: HttpRequest) -> dict[str, Any]:
    return {"data": [_license_out(request_key(request).license)]}


@router.get(
    "/licenses/{license_id}",
    response={200: LicenseOut, **ERRORS},
    summary="The license",
    operation_id="api_v1_license_detail",
)
def license_detail(request: HttpRequest, license_id: uuid.UUID) -> dict[str, Any]:
    return _license_out(request_license(request, license_id))
