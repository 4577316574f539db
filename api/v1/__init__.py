"""The customer API, version 1 (/api/v1/): the django-ninja API object that joins the
resources' routers, its auth and its one error shape. django-ninja derives the OpenAPI 3.1
document (/api/v1/openapi.json) from the operations and schemas of this package.

- Auth (`auth.py`): `Authorization: Bearer <API key>` (api.models.ApiKey, scope `read`).
  No key, an unknown, revoked or expired one: 401. A license the key does not belong to:
  404, the same as one that does not exist (docs/invariants.md, 7). The key of a closed
  license: 403 `license_closed` on every path, as its pages refuse it
  (License.access_refusal); a suspended license reads as its dashboard does, its status
  saying "suspended".
- Every 4xx is `{"error": {"code": …, "message": …, "field": …}}` (`errors.py`), and the
  document lists each with its meaning and headers. Limited per key to
  settings.API_RATE_LIMIT requests per API_RATE_WINDOW_SECONDS: 429 with Retry-After.
- The document says everything a request may be: parameters carry their formats and
  patterns (`formats.py`), checked as written there, and a query parameter the operation
  does not declare is refused (`declared.py`).
- Money is a decimal string with 6 places ("12.345678"); times are RFC 3339 in UTC; days
  and months are the license's local ones (`formats.py`).
- One module per resource: `licenses`, `balance`, `usage`, `transactions`, `statements`,
  `history` (the CSV export). One computation each: transactions are the All transactions
  page's (billing.history.transactions: one line per API call, the same filters and
  search), statements the statement page's (billing.statements.selectors →
  billing.statements.figures, which the reconciliation holds against the ledger).
- Cost: balance, usage and transactions read LicenseBalance, a bounded range of
  DailyRollup rows, or an index range of the ledger (keyset pages), whatever the length of
  the history; a statement reads the month's rollups, the balance and the month's few
  refunds without a service (as the statement page and PDF).
"""

from typing import Any

from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

from api.v1 import balance, history, licenses, statements, transactions, usage
from api.v1.auth import ApiKeyAuth
from api.v1.declared import undeclared_query_refusal_install
from api.v1.errors import error_handlers_install, error_responses_document, urls_in_shape
from portal.db_router import replica_reads


class ContractApi(NinjaAPI):
    """django-ninja's API, whose document also says what each refusal means and which
    headers come with it (api.v1.errors.ERROR_STATUSES)."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        error_responses_document(schema)
        return schema


api = ContractApi(
    title="Token & Credit Portal API",
    version="1.0.0",
    description=(
        "Read a license's balance, usage, transactions and statements. Money is a decimal "
        "string with 6 places; times are RFC 3339; days and months are the license's own. "
        "The key of a closed license is refused on every path (403, code license_closed); "
        "a suspended license still reads, as its dashboard does, and its status says so."
    ),
    urls_namespace="api",
    auth=ApiKeyAuth(),
    docs_url=None,
    openapi_url="/openapi.json",
)
# Every operation only reads: from the replica when there is one (portal.db_router). The
# key is checked on the primary (api's tables are not replica data), so a revoked key fails
# at once.
api.add_decorator(replica_reads, mode="view")
error_handlers_install(api)
undeclared_query_refusal_install(api)
# The order here is the order of the paths in the OpenAPI document.
for resource in (licenses, balance, usage, transactions, statements, history):
    api.add_router("", resource.router)
# What api/urls.py serves: the operations, and the one error shape where django-ninja
# would answer a 405 or 404 of its own.
urls = urls_in_shape(api)

__all__ = ["api", "urls"]
