"""Issue 18, finding 1, for the API: a HEAD (or any method but GET) on an export (the
history CSV, a statement, usage, transactions) is refused before any work is done, so a
flood of them builds nothing and does not even use up the key's allowance."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import bearer
from tests.ledger import T0, buy

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("export", ["history.csv", "statements/2025-06", "usage", "transactions"])
def test_heads_and_other_methods_on_the_api_do_no_export_work(
    client, alice_license, make_key, settings, export
):
    settings.API_RATE_LIMIT = 3
    buy(alice_license, "10", at=T0)
    raw = make_key(alice_license)
    url = f"/api/v1/licenses/{alice_license.public_id}/{export}"
    for method in ("head", "post", "put", "patch", "delete") * 4:
        with CaptureQueriesContext(connection) as queries:
            response = getattr(client, method)(url, **bearer(raw))
        assert response.status_code == 405, method
        assert not [q for q in queries if "billing_" in q["sql"]], method
    assert client.get(url, **bearer(raw)).status_code in (200, 404)  # allowance intact
