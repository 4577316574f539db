"""The overview's render cache: the sections drawn from the ledger, rendered once for each
version of what they show.

Most of a dashboard's server time is turning a hundred recent entries, 42 chart bars and
the totals into HTML (docs/benchmarks.md, part 1). Those sections change only when what
they show changes, which `DashboardBasis.sections_version` names: the license, its ledger
version (every posting changes it, in the posting's own transaction), its local day,
timezone and alert threshold, and the prices in effect. So they are kept rendered, per
license, beside that version, and drawn again the first time any of it differs: a new entry, a refund, a changed threshold
or timezone, midnight in the license's timezone, a new price in effect. Money is never
shown older than the totals read for the request.

Only fragments are kept, never a response: the parts of the page that belong to the
request (the CSRF token, messages, the login's email and licenses, the viewer's role, how
old the data is) are drawn on every request around them. The sections are rendered
without the request, so none of it can slip into them; an owner and a member of one
license see the same sections.

The cache is a convenience (settings.CACHES "dashboard", memory in each process): empty,
not configured or failing, the page renders in full, as before. Nothing in it names the
templates or the code that drew the sections: a deploy starts new processes, whose caches
start empty. A cache shared between processes (Redis, say) would outlive a deploy and serve
sections the previous release drew; it would need the release in its keys (CACHES
"dashboard" KEY_PREFIX, set by the deploy), which tests/dashboard/test_render_cache.py asks
of any backend but memory.
"""

import logging

from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.base import BaseCache
from django.template import engines
from django.utils.safestring import SafeString, mark_safe

from dashboard.selectors.basis import DashboardBasis
from dashboard.selectors.overview import dashboard_from

logger = logging.getLogger(__name__)

CACHE_ALIAS = "dashboard"

# name -> Jinja2 template (templates/jinja2/dashboard/sections/, the "jinja2" engine of
# settings.TEMPLATES); the page places each with {{ sections.<name> }}.
SECTIONS = {
    "low_balance": "dashboard/sections/low_balance.html",
    "balance": "dashboard/sections/balance.html",
    "estimates": "dashboard/sections/estimates.html",
    "transactions": "dashboard/sections/transactions.html",
    "analytics": "dashboard/sections/analytics.html",
    "monthly": "dashboard/sections/monthly_chart.html",
    "daily": "dashboard/sections/daily_chart.html",
}


def _cache() -> BaseCache | None:
    try:
        return caches[CACHE_ALIAS]
    except InvalidCacheBackendError:
        return None


def cache_key(license_id: int) -> str:
    # One entry per license: a new version replaces the old one instead of sitting beside it.
    return f"dashboard-sections:{license_id}"


def dashboard_sections(basis: DashboardBasis) -> dict[str, SafeString]:
    """The ledger's sections of this basis, from the cache when drawn for exactly this
    version, otherwise drawn now (two more queries: rollups and recent entries) and kept."""
    version = basis.sections_version()
    cache = _cache()
    key = cache_key(basis.license.pk)
    if cache is not None:
        try:
            kept = cache.get(key)
        except Exception:  # a cache that fails (a Redis outage) only costs the rendering
            logger.warning(
                "dashboard cache read failed license=%s", basis.license.pk, exc_info=True
            )
            kept = None
        # The version starts with the license's id: sections of another license never match.
        if kept is not None and kept[0] == version:
            return kept[1]
    sections = sections_draw(basis)
    if cache is not None:
        try:
            cache.set(key, (version, sections))
        except Exception:
            logger.warning(
                "dashboard cache write failed license=%s", basis.license.pk, exc_info=True
            )
    return sections


def sections_draw(basis: DashboardBasis) -> dict[str, SafeString]:
    """The ledger's sections of this basis, drawn now (two more queries)."""
    context = {"dashboard": dashboard_from(basis), "license": basis.license}
    engine = engines["jinja2"]
    # The templates autoescape (dashboard/jinja_env.py): what they give is HTML.
    return {
        name: mark_safe(engine.get_template(template).render(context))  # noqa: S308
        for name, template in SECTIONS.items()
    }
