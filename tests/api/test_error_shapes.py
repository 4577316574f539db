"""Every 4xx the API answers, on every path of its document, is in the one error shape
(`{"error": {"code", "message", "field"?}}`) and is declared for that operation in the
document, with its headers: a program written against the document handles every refusal
(issue 26: the API contract says everything it does)."""

from typing import Any

import pytest
from django.test import Client

from accounts.models import License
from api.services import api_key_create
from api.v1 import api
from api.v1.errors import ErrorOut
from tests.api.conftest import bearer, document_paths
from tests.ledger import buy

pytestmark = pytest.mark.django_db


def _operation(template: str) -> dict[str, Any]:
    return api.get_openapi_schema()["paths"][template]["get"]


def _in_the_shape(answer: Any) -> dict[str, Any]:
    assert answer["Content-Type"].startswith("application/json"), answer.content
    body = answer.json()
    ErrorOut.model_validate(body)  # the documented schema
    assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "field"}
    error: dict[str, Any] = body["error"]
    return error


def test_every_refusal_of_every_operation_is_documented_in_the_one_shape(
    client: Client, alice_license: License, bob_license: License, settings: Any
) -> None:
    settings.API_RATE_LIMIT = 1000
    entry = buy(alice_license, "5.00").entry
    _, raw = api_key_create(acting_user=None, license=alice_license, name="shapes")
    theirs = document_paths(bob_license, entry.pk)
    for template, path in document_paths(alice_license, entry.pk).items():
        answers = {
            400: client.get(path, {"serivce": "ai_data"}, **bearer(raw)),
            401: client.get(path),
            405: client.post(path, **bearer(raw)),
        }
        if "{license_id}" in template:
            answers[404] = client.get(theirs[template], **bearer(raw))
        responses = _operation(template)["responses"]
        for status, answer in answers.items():
            assert answer.status_code == status, (path, status, answer.content)
            assert status in responses, (template, status)
            error = _in_the_shape(answer)
            assert error["message"], (path, status)
            # The document's words for the status name the code the program receives.
            assert error["code"] in responses[status]["description"], (template, error)
        assert answers[401]["WWW-Authenticate"] == 'Bearer realm="api"'
        assert "WWW-Authenticate" in responses[401]["headers"]
        assert answers[405]["Allow"] == "GET" and "Allow" in responses[405]["headers"]
        assert _in_the_shape(answers[405])["code"] == "method_not_allowed"
        assert 403 in responses  # license_closed: tests/api/test_closed_licenses.py


def test_too_many_requests_is_documented_with_retry_after_on_every_path(
    client: Client, alice_license: License, settings: Any
) -> None:
    settings.API_RATE_LIMIT = 1
    entry = buy(alice_license, "5.00").entry
    for template, path in document_paths(alice_license, entry.pk).items():
        _, raw = api_key_create(acting_user=None, license=alice_license, name=template[-30:])
        client.get(path, **bearer(raw))
        limited = client.get(path, **bearer(raw))
        assert limited.status_code == 429, path
        assert _in_the_shape(limited)["code"] == "rate_limited"
        assert int(limited["Retry-After"]) >= 1
        documented = _operation(template)["responses"][429]
        assert "rate_limited" in documented["description"]
        assert documented["headers"]["Retry-After"]["schema"]["type"] == "integer"
        assert documented["headers"]["Retry-After"]["required"] is True


def test_a_refused_parameter_is_named_in_the_field(
    client: Client, alice_license: License, make_key: Any
) -> None:
    raw = make_key(alice_license)
    url = f"/api/v1/licenses/{alice_license.public_id}/transactions"
    answer = client.get(url, {"limit": "0"}, **bearer(raw))
    assert answer.status_code == 400
    assert _in_the_shape(answer) == {
        "code": "invalid_request",
        "message": "limit: Input should be greater than or equal to 1",
        "field": "limit",
    }


def test_paths_the_api_does_not_serve_answer_404_in_the_shape(
    client: Client, alice_license: License, make_key: Any
) -> None:
    raw = make_key(alice_license)
    for path in (
        "/api/v1/",
        "/api/v1/nothing",
        f"/api/v1/licenses/{alice_license.public_id}/balance/",
        f"/api/v1/licenses/{alice_license.public_id}/invoices",
    ):
        answer = client.get(path, **bearer(raw))
        assert answer.status_code == 404, path
        assert _in_the_shape(answer)["code"] == "not_found"
    posted = client.post("/api/v1/nothing", **bearer(raw))  # not the CSRF page
    assert posted.status_code == 404 and _in_the_shape(posted)["code"] == "not_found"
    # The document and the reference page are still served beside them.
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/reference/").status_code == 200
