"""The ledger in the admin: read-only for everyone, superusers included, with lists that
avoid the queries that grow with the ledger (full counts, DISTINCT dates)."""

import calendar
from datetime import date
from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import Max, Min, Q, QuerySet
from django.http import HttpRequest
from django.urls import path
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import Truncator

from accounts.models import License
from billing.admin.money import MONEY_PAGES, can_issue_refunds, money_page_view, refund_url
from billing.admin.reconciliation import month_close_view, reconciliation_view
from billing.ledger.kinds import MOVEMENTS, MOVEMENTS_BY_NAME
from billing.models import LedgerEntry
from billing.money import format_money
from billing.refunds.services import refundable_amount
from portal.admin import ReadOnlyAdminMixin

# A usage charge is refunded as credit, a card purchase back to the card (billing.admin.money).
_REFUNDABLE_KINDS = (LedgerEntry.Kind.USAGE, LedgerEntry.Kind.PURCHASE)


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows (a LIMITed subquery), so a list page never counts the ledger.

    Beyond CAP the list says "10,000+" and offers the newest CAP rows; filters (license,
    kind, dates) narrow it. Deep OFFSETs are bounded by the same cap.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        rows = cast(QuerySet[Any], self.object_list)
        found = rows[: self.CAP + 1].count()
        self.capped = found > self.CAP
        return min(found, self.CAP)

    capped = False


class CheapDateHierarchyChangeList(ChangeList):
    """The date drill-down from MIN/MAX (two index lookups) and the calendar.

    Django's own asks the database for the DISTINCT years, months or days of the
    filtered rows: a full scan of the ledger on every list page. This one may offer a
    period with no entries; following it shows an empty list, which is cheap.
    """

    @cached_property
    def cheap_date_hierarchy(self) -> dict:
        field = self.date_hierarchy
        generic = f"{field}__"
        year, month, day = (self.params.get(f"{field}__{p}") for p in ("year", "month", "day"))

        def link(filters):
            return self.get_query_string(filters, [generic])

        def as_int(value):
            try:
                return int(value)
            except (TypeError, ValueError):
                return None

        year, month, day = as_int(year), as_int(month), as_int(day)
        if year and month and day:
            return {
                "show": True,
                "back": {"link": link({f"{field}__year": year, f"{field}__month": month}),
                         "title": date(year, month, 1).strftime("%B %Y")},
                "choices": [{"title": date(year, month, day).strftime("%B %-d")}],
            }  # fmt: skip
        if year and month:
            days = calendar.monthrange(year, month)[1]
            return {
                "show": True,
                "back": {"link": link({f"{field}__year": year}), "title": str(year)},
                "choices": [
                    {
                        "link": link(
                            {f"{field}__year": year, f"{field}__month": month, f"{field}__day": d}
                        ),
                        "title": date(year, month, d).strftime("%b %-d"),
                    }
                    for d in range(1, days + 1)
                ],
            }
        if year:
            return {
                "show": True,
                "back": {"link": link({}), "title": "All dates"},
                "choices": [
                    {
                        "link": link({f"{field}__year": year, f"{field}__month": m}),
                        "title": date(year, m, 1).strftime("%B %Y"),
                    }
                    for m in range(1, 13)
                ],
            }
        if self.query:
            # A text search scans; the date range of its result would scan a second time.
            return {"show": False}
        span = self.queryset.order_by().aggregate(first=Min(field), last=Max(field))
        if span["first"] is None:
            return {"show": False}
        first, last = timezone.localtime(span["first"]), timezone.localtime(span["last"])
        return {
            "show": True,
            "back": None,
            "choices": [
                {"link": link({f"{field}__year": y}), "title": str(y)}
                for y in range(first.year, last.year + 1)
            ],
        }


class MovementListFilter(admin.SimpleListFilter):
    """Entries by movement (billing.ledger.kinds): a refund to the card, goodwill stored as
    a refund before the credit kind and a usage refund are told apart, as customers see them."""

    title = "movement"
    parameter_name = "movement"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(m.name, m.label) for m in MOVEMENTS]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        movement = MOVEMENTS_BY_NAME.get(self.value() or "")
        return queryset if movement is None else queryset.filter(movement.q())


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "license",
        "kind",
        "service",
        "amount_display",
        "tokens",
        "images",
        "short_description",
        "external_id",
        "created_by",
    ]
    list_select_related = ["license", "created_by"]
    list_filter = [
        MovementListFilter,
        "kind",
        "service",
        ("license", admin.RelatedFieldListFilter),
    ]
    # Searched by get_search_results below; listed so the admin shows the search box.
    search_fields = ["license__key", "license__name", "external_id", "description"]
    search_help_text = (
        "A license key or part of a license name shows that license's entries; anything "
        "else is an exact external id or part of a description (fastest with a license "
        "chosen on the right)."
    )
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at", "-id"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    # The admin renders a list cell by cell (about 0.1 ms each here): 100 rows of 10
    # columns cost 4 × the dashboard at the bench's 10 M license, 50 about 1.5 ×
    # (docs/benchmarks.md, part 5). The license's own ledger page is the staff's reading.
    list_per_page = 50
    fields = (
        "id",
        "license",
        "kind",
        "service",
        "amount_display",
        "tokens",
        "images",
        "api_calls",
        "description",
        "occurred_at",
        "recorded_at",
        "external_id",
        "refund_of",
        "reason",
        "created_by",
        "refunds_issued",
        "still_refundable",
    )
    readonly_fields = fields

    def get_changelist(self, request, **kwargs):
        return CheapDateHierarchyChangeList

    def get_search_results(self, request, queryset, search_term):
        """License first, then external id or description.

        Django's default ORs every field into one condition, which forces a scan of the
        whole ledger even for an exact license key. Licenses are few: a term that names
        one (or several) becomes `license_id IN (…)`, served by ledger_license_recent.
        Otherwise an exact external id (one probe of the unique (license, external_id)
        index when a license is chosen), else a description match, which scans — within
        the chosen license's rows when there is one.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        licenses = list(
            License.objects.filter(Q(key=term) | Q(name__icontains=term)).values_list(
                "pk", flat=True
            )[:100]
        )
        if licenses:
            return queryset.filter(license_id__in=licenses), False
        exact = queryset.filter(external_id=term)
        if exact.exists():  # with a license chosen: one probe of the unique index
            return exact, False
        return queryset.filter(description__icontains=term), False

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if can_issue_refunds(request.user):
            display.append("refund_link")
        return display

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj):
        return format_money(obj.amount)

    @admin.display(description="description")
    def short_description(self, obj):
        return Truncator(obj.description).chars(50)

    @admin.display(description="")
    def refund_link(self, obj):
        url = refund_url(obj)
        if url is None or obj.amount == 0:
            return ""
        return format_html('<a href="{}">Refund…</a>', url)

    @admin.display(description="refunds of this charge")
    def refunds_issued(self, obj):
        if obj.kind not in _REFUNDABLE_KINDS:
            return "—"
        refunds = list(
            LedgerEntry.objects.for_license(obj.license_id)
            .filter(refund_of=obj)
            .select_related("created_by")
            .order_by("occurred_at", "id")
        )
        if not refunds:
            return "none"
        return format_html(
            "<br>".join(["{}"] * len(refunds)),
            *[
                f"#{r.pk} {format_money(r.amount)} on {timezone.localtime(r.occurred_at):%Y-%m-%d %H:%M}"
                f" by {r.created_by or 'system'}: {r.reason}"
                for r in refunds
            ],
        )

    @admin.display(description="still refundable")
    def still_refundable(self, obj):
        if obj.kind not in _REFUNDABLE_KINDS:
            return "—"
        return format_money(refundable_amount(obj))

    # --- extra pages --------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        extra = [
            path(page.route, wrap(money_page_view(self, page)), name=page.url_name)
            for page in MONEY_PAGES
        ]
        extra.append(
            path(
                "reconciliation/close/",
                wrap(lambda request: month_close_view(self, request)),
                name="billing_ledgerentry_month_close",
            )
        )
        extra.append(
            path(
                "reconciliation/",
                wrap(lambda request: reconciliation_view(self, request)),
                name="billing_ledgerentry_reconciliation",
            )
        )
        return extra + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        entry = self.get_object(request, object_id)
        if entry is not None and can_issue_refunds(request.user):
            extra_context["refund_url"] = refund_url(entry)
        return super().change_view(request, object_id, form_url, extra_context)
