"""A closed license's API key is refused on every path of the API, saying why, as its pages
refuse it; a suspended license reads through the API as its dashboard shows it (issue 29:
with Globex closed, its key still read /balance, /transactions and the full CSV)."""

import pytest
from django.urls import reverse

from accounts.models import License
from api.v1 import api
from tests.api.conftest import bearer, document_paths
from tests.ledger import buy

pytestmark = pytest.mark.django_db


def every_path(license: License, transaction_id: int) -> list[str]:
    return list(document_paths(license, transaction_id).values())


def test_the_api_has_the_paths_this_file_expects():
    assert len(api.get_openapi_schema()["paths"]) == 8  # a new path is covered automatically


def test_a_closed_licenses_key_is_refused_on_every_path_saying_why(client, bob_license, make_key):
    entry = buy(bob_license, "5.00").entry
    raw = make_key(bob_license)
    before = client.get(f"/api/v1/licenses/{bob_license.public_id}/balance", **bearer(raw))
    assert before.status_code == 200
    License.objects.filter(pk=bob_license.pk).update(status=License.Status.CLOSED)
    for path in every_path(bob_license, entry.pk):
        answer = client.get(path, **bearer(raw))
        assert answer.status_code == 403, (path, answer.content)
        error = answer.json()["error"]
        assert error["code"] == "license_closed", path
        assert "closed" in error["message"] and "billing support" in error["message"]
        assert b"5.000000" not in answer.content


def test_the_refusal_is_documented_on_every_path():
    schema = api.get_openapi_schema()
    for path, operations in schema["paths"].items():
        assert 403 in operations["get"]["responses"], path
    assert "license_closed" in str(schema["components"]["schemas"]["ErrorBody"])


def test_a_suspended_license_reads_as_its_dashboard_shows_it(
    client, bob_license, make_key, settings
):
    settings.HISTORY_CSV_RATE_LIMIT = 100
    entry = buy(bob_license, "5.00").entry
    raw = make_key(bob_license)
    License.objects.filter(pk=bob_license.pk).update(status=License.Status.SUSPENDED)
    for path in every_path(bob_license, entry.pk):
        answer = client.get(path, **bearer(raw))
        assert answer.status_code == 200, (path, answer.content)
    [listed] = client.get("/api/v1/licenses", **bearer(raw)).json()["data"]
    assert listed["status"] == "suspended"


def test_the_web_and_the_api_refuse_a_closed_license_by_the_same_rule(
    client, bob_license, make_key
):
    from tests.accounts.factories import MembershipFactory

    raw = make_key(bob_license)
    member = MembershipFactory(license=bob_license).user
    License.objects.filter(pk=bob_license.pk).update(status=License.Status.CLOSED)
    bob_license.refresh_from_db()
    refusal = bob_license.access_refusal()
    assert refusal is not None
    api_answer = client.get(f"/api/v1/licenses/{bob_license.public_id}", **bearer(raw))
    assert api_answer.json()["error"]["message"] == refusal.message
    client.force_login(member)
    page = client.get(reverse("dashboard:overview", kwargs={"license_id": bob_license.public_id}))
    assert page.status_code == 403 and b"This license is closed" in page.content
