"""The usage explorer (Reports): what a customer reads there is exactly the sum of their
ledger's usage over the local days they chose, by day or month and by service or
endpoint; another license's usage never appears; a range it cannot show is refused with
a message naming the field; and it reads rollups, so its cost does not grow with the
history (docs/invariants.md, 1, 7, 8, 9)."""

import random
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from accounts.services import license_save
from billing.charges.selectors import ENDPOINT_NOT_READY_MESSAGE
from billing.ledger.rebuild import rollups_rebuild
from billing.models import LedgerEntry, LicenseBalance
from tests.accounts.factories import LicenseFactory, MembershipFactory, UserFactory
from tests.ledger import ENDPOINTS, assert_ledger_consistent, buy, charge, record, refund

pytestmark = pytest.mark.django_db


def explorer_url(license) -> str:
    return reverse("dashboard:usage_explorer", kwargs={"license_id": license.public_id})


def ledger_usage(license, start: date, end: date, granularity: str, group_by: str) -> dict:
    """{(period, group): (spent, tokens, images, calls)} summed here from the entries."""
    tz = license.tzinfo
    sums: defaultdict[tuple[date, str], list[Decimal | int]] = defaultdict(
        lambda: [Decimal(0), 0, 0, 0]
    )
    for e in LedgerEntry.objects.for_license(license).filter(kind="usage"):
        day = e.occurred_at.astimezone(tz).date()
        if not start <= day <= end:
            continue
        period = day if granularity == "day" else day.replace(day=1)
        s = sums[(period, e.service if group_by == "service" else e.endpoint)]
        s[0] -= e.amount
        s[1] += e.tokens
        s[2] += e.images
        s[3] += e.api_calls
    return {k: tuple(v) for k, v in sums.items()}


def shown(explorer) -> dict:
    """The same figures as the page holds them: per column and series, and the totals."""
    out = {}
    for column in explorer.columns:
        for series, amount in zip(explorer.series, column.amounts, strict=True):
            if amount:
                out[(column.start, series.group)] = amount
    return out


def random_history(rng: random.Random, license, *, days: int, calls: int, end: datetime):
    """Calls of every service and endpoint over `days` days before `end` (some failed), a
    purchase, refunds of some charges and a goodwill credit."""
    buy(license, "500", at=end - timedelta(days=days + 1))
    records = []
    for _ in range(calls):
        at = end - timedelta(seconds=rng.randrange(days * 86400))
        endpoint = rng.choice((*ENDPOINTS, ""))
        if rng.random() < 0.05:
            records.append(record(at, endpoint=endpoint, status="error"))
        elif rng.random() < 0.3:
            records.append(record(at, images=rng.randint(1, 900), endpoint=endpoint))
        else:
            records.append(
                record(
                    at,
                    input_tokens=rng.randint(1, 90_000),
                    cached_tokens=rng.choice((0, rng.randint(1, 200_000))),
                    completion_tokens=rng.randint(0, 9_000),
                    endpoint=endpoint,
                )
            )
    for i in range(0, len(records), 40):
        charge(license, *records[i : i + 40])


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("granularity", ["day", "month"])
@pytest.mark.parametrize("group_by", ["service", "endpoint"])
def test_the_explorer_shows_exactly_the_ledgers_usage_for_random_histories(
    client, billing_user, seed, granularity, group_by
):
    rng = random.Random(seed)
    license = LicenseFactory(key=f"EXPL-{seed:06d}", timezone="America/New_York")
    user = MembershipFactory(license=license).user
    end = datetime(2025, 11, 20, 15, tzinfo=UTC)
    random_history(rng, license, days=120, calls=300, end=end)
    charges = list(LedgerEntry.objects.for_license(license).filter(kind="usage", amount__lt=0))
    for entry in rng.sample(charges, 5):
        refund(
            license, entry, -entry.amount / 2 if -entry.amount >= 2 else "0.000001", billing_user
        )
    # A range that starts and ends inside the history, on arbitrary local days.
    start = date(2025, 8, 3) + timedelta(days=rng.randrange(20))
    stop = start + timedelta(days=rng.randrange(40, 100))

    client.force_login(user)
    response = client.get(
        explorer_url(license),
        {"from": start, "to": stop, "granularity": granularity, "group_by": group_by},
    )
    assert response.status_code == 200
    explorer = response.context["explorer"]
    expected = ledger_usage(license, start, stop, granularity, group_by)
    assert shown(explorer) == {k: v[0] for k, v in expected.items() if v[0]}
    assert explorer.total == sum((v[0] for v in expected.values()), Decimal(0))
    assert explorer.api_calls == sum(v[3] for v in expected.values())
    by_group = {s.group: (s.amount, s.tokens, s.images, s.api_calls) for s in explorer.series}
    per_group: defaultdict[str, list[Decimal | int]] = defaultdict(lambda: [Decimal(0), 0, 0, 0])
    for (_, group), values in expected.items():
        for i, value in enumerate(values):
            per_group[group][i] += value
    assert by_group == {g: tuple(v) for g, v in per_group.items()}
    # Every day (or month) of the range is a column, empty ones included, oldest first.
    if granularity == "day":
        assert [c.start for c in explorer.columns] == [
            start + timedelta(days=n) for n in range((stop - start).days + 1)
        ]
    else:
        assert explorer.columns[0].start == start.replace(day=1)
        assert explorer.columns[-1].start == stop.replace(day=1)
    # The page prints the grand total with its 6 places, as the ledger holds it.
    assert f"${explorer.total:,.6f}" in response.content.decode()
    assert_ledger_consistent(license)


def test_a_call_near_local_midnight_counts_on_its_local_day(client, member_a, license_a):
    license_a.timezone = "America/New_York"
    license_save(acting_user=None, license=license_a)
    buy(license_a, "10")
    # 04:30 UTC on Mar 8 is 23:30 on Mar 7 in New York (EST); on Mar 10 it is 00:30 (EDT).
    charge(license_a, record(datetime(2025, 3, 8, 4, 30, tzinfo=UTC), images=100))
    charge(license_a, record(datetime(2025, 3, 10, 4, 30, tzinfo=UTC), images=300))
    client.force_login(member_a)
    day = client.get(explorer_url(license_a), {"from": "2025-03-07", "to": "2025-03-07"})
    assert [s.amount for s in day.context["explorer"].series] == [Decimal("0.010000")]
    days = client.get(explorer_url(license_a), {"from": "2025-03-08", "to": "2025-03-10"})
    columns = {c.start: c.amount for c in days.context["explorer"].columns}
    assert columns == {
        date(2025, 3, 8): 0,
        date(2025, 3, 9): 0,
        date(2025, 3, 10): Decimal("0.030000"),
    }
    # The customer moves to Tokyo: the same calls fall on other local days (rebuilt rollups).
    license_a.timezone = "Asia/Tokyo"
    license_save(acting_user=None, license=license_a)
    tokyo = client.get(
        explorer_url(license_a), {"from": "2025-03-07", "to": "2025-03-07", "group_by": "endpoint"}
    )
    assert tokyo.context["explorer"].is_empty
    tokyo = client.get(
        explorer_url(license_a), {"from": "2025-03-08", "to": "2025-03-08", "group_by": "endpoint"}
    )
    assert tokyo.context["explorer"].total == Decimal("0.010000")
    assert_ledger_consistent(license_a)


def test_totals_by_service_count_each_call_once_under_its_service(client, member_a, license_a):
    buy(license_a, "10")
    at = datetime(2025, 3, 8, 12, tzinfo=UTC)
    charge(
        license_a,
        *(record(at, input_tokens=1_000) for _ in range(3)),
        record(at, images=10),
        # A call that made images and read text is an image call (statements count it so).
        record(at, images=5, input_tokens=200),
    )
    client.force_login(member_a)
    page = client.get(explorer_url(license_a), {"from": "2025-03-08", "to": "2025-03-08"})
    html = page.content.decode()

    def calls_cell(group: str) -> str:
        row = re.search(rf'<tr data-group="{group}">.*?</tr>', html, re.S)
        assert row is not None, group
        return re.findall(r'<td class="num">([^<]*)</td>', row.group(0))[0]

    assert calls_cell("ai_data") == "3"
    assert calls_cell("ai_images") == "2"
    assert "5 API calls" in " ".join(html.split())
    assert "not per service" not in html  # the note said calls were not counted by service


def test_another_licenses_usage_never_appears_and_its_explorer_is_404(
    client, member_a, license_a, license_b
):
    buy(license_a, "10")
    buy(license_b, "10")
    at = datetime(2025, 6, 10, 12, tzinfo=UTC)
    charge(license_a, record(at, images=10, endpoint="/v1/mine"))
    charge(license_b, record(at, images=990, endpoint="/v1/bravo-secret"))
    client.force_login(member_a)
    response = client.get(
        explorer_url(license_a), {"from": "2025-06-01", "to": "2025-06-30", "group_by": "endpoint"}
    )
    explorer = response.context["explorer"]
    assert [(s.group, s.amount) for s in explorer.series] == [("/v1/mine", Decimal("0.001000"))]
    assert "bravo-secret" not in response.content.decode()
    assert client.get(explorer_url(license_b)).status_code == 404


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"from": "2025-06-30", "to": "2025-06-01"}, "to", "must be on or after 'from'"),
        ({"from": "2024-01-01", "to": "2025-06-01"}, "from", "spans at most 366 days"),
        (
            {"from": "2019-01-01", "to": "2025-06-01", "granularity": "month"},
            "from",
            "spans at most 1098 days",
        ),
        ({"from": "2025-13-01"}, "from", "must be a date written YYYY-MM-DD"),
        ({"to": "yesterday"}, "to", "must be a date written YYYY-MM-DD"),
        ({"granularity": "week"}, "granularity", "must be day or month"),
        ({"group_by": "model"}, "group_by", "must be service or endpoint"),
    ],
)
def test_a_range_the_explorer_cannot_show_is_refused_naming_the_field(
    client, member_a, license_a, params, field, words
):
    client.force_login(member_a)
    response = client.get(explorer_url(license_a), params)
    assert response.status_code == 400
    assert response.context["explorer"] is None
    errors = response.context["form"].errors
    assert list(errors) == [field] and words in errors[field][0]
    assert errors[field][0].startswith(f"'{field}'")
    # The message names the field, and the page shows it beside that field.
    assert escape(errors[field][0]) in response.content.decode()


def test_by_endpoint_waits_for_the_rollups_that_cover_the_history(client, member_a, license_a):
    """A license that had history before the endpoint rollups existed (migration 0014):
    by endpoint says it is being prepared, by service works, and `rebuild_rollups` makes
    it exact."""
    buy(license_a, "10")
    charge(license_a, record(datetime(2025, 6, 10, 12, tzinfo=UTC), images=10))
    LicenseBalance.objects.for_license(license_a).update(endpoint_rollups_ready=False)
    client.force_login(member_a)
    params = {"from": "2025-06-01", "to": "2025-06-30"}
    waiting = client.get(explorer_url(license_a), {**params, "group_by": "endpoint"})
    assert waiting.status_code == 200 and waiting.context["explorer"] is None
    assert escape(ENDPOINT_NOT_READY_MESSAGE) in waiting.content.decode()
    by_service = client.get(explorer_url(license_a), params)
    assert by_service.context["explorer"].total == Decimal("0.001000")
    rollups_rebuild(license=license_a)
    ready = client.get(explorer_url(license_a), {**params, "group_by": "endpoint"})
    assert ready.context["explorer"].total == Decimal("0.001000")


def test_the_explorer_costs_the_same_queries_for_a_short_or_a_long_history(
    client, member_a, license_a
):
    buy(license_a, "1000")
    client.force_login(member_a)
    params = {"from": "2025-01-01", "to": "2025-12-31", "group_by": "endpoint"}
    charge(license_a, record(datetime(2025, 6, 10, 12, tzinfo=UTC), images=10))
    # A session's first page renews it (portal.middleware, at most once a minute): not the
    # explorer's cost, so it is paid before counting.
    assert client.get(explorer_url(license_a), params).status_code == 200
    with CaptureQueriesContext(connection) as short:
        assert client.get(explorer_url(license_a), params).status_code == 200
    rng = random.Random(3)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    charge(
        license_a,
        *[
            record(start + timedelta(hours=rng.randrange(364 * 24)), images=rng.randint(1, 9))
            for _ in range(600)
        ],
    )
    with CaptureQueriesContext(connection) as long:
        response = client.get(explorer_url(license_a), params)
    assert len(long.captured_queries) == len(short.captured_queries)
    assert len(response.context["explorer"].columns) == 365
    # The ledger itself is never read: only rollups and the license's balance row.
    assert not [q for q in long.captured_queries if "billing_ledgerentry" in q["sql"]]


def test_chart_labels_are_cents_and_tooltips_exact(client, member_a, license_a):
    buy(license_a, "10")
    charge(license_a, record(datetime(2025, 6, 10, 12, tzinfo=UTC), images=20))  # $0.002
    charge(license_a, record(datetime(2025, 6, 11, 12, tzinfo=UTC), images=12_345))  # $1.2345
    client.force_login(member_a)
    response = client.get(explorer_url(license_a), {"from": "2025-06-10", "to": "2025-06-12"})
    labels = [c.amount_label for c in response.context["explorer"].columns]
    assert labels == ["<$0.01", "$1.23", "$0.00"]
    # A bar's tooltip gives the exact amount (issue 28).
    tips = [c.tooltip for c in response.context["explorer"].columns]
    assert tips == [
        "Tue, Jun 10, 2025: $0.002",
        "Wed, Jun 11, 2025: $1.2345",
        "Thu, Jun 12, 2025: $0.00",
    ]
    # The tables keep every digit.
    assert "$0.002000" in response.content.decode()


def test_reports_links_the_explorer(client, member_a, license_a):
    client.force_login(member_a)
    page = client.get(reverse("dashboard:reports", kwargs={"license_id": license_a.public_id}))
    assert explorer_url(license_a) in page.content.decode()


def test_a_login_of_several_licenses_sees_each_ones_own(client, license_a, license_b):
    user = UserFactory(email="carol@both.example")
    MembershipFactory(license=license_a, user=user)
    MembershipFactory(license=license_b, user=user)
    buy(license_a, "10")
    buy(license_b, "10")
    charge(license_a, record(datetime(2025, 6, 10, 12, tzinfo=UTC), images=10))
    charge(license_b, record(datetime(2025, 6, 10, 12, tzinfo=UTC), images=70))
    client.force_login(user)
    params = {"from": "2025-06-01", "to": "2025-06-30"}
    a = client.get(explorer_url(license_a), params).context["explorer"]
    b = client.get(explorer_url(license_b), params).context["explorer"]
    assert (a.total, b.total) == (Decimal("0.001000"), Decimal("0.007000"))


def test_the_page_is_well_formed_and_an_endpoints_markup_stays_text(client, member_a, license_a):
    """The bars and per-period rows are written in Python (dashboard.selectors.explorer, for speed):
    every element opens and closes, one bar and one row per day; text the upstream controls
    (an endpoint) is escaped wherever it shows."""
    from html.parser import HTMLParser

    hostile = '/v1/<img src=x onerror="alert(1)">'
    buy(license_a, "10")
    charge(license_a, record(datetime(2025, 6, 10, 12, tzinfo=UTC), images=10, endpoint=hostile))
    client.force_login(member_a)
    page = client.get(
        explorer_url(license_a), {"from": "2025-06-01", "to": "2025-06-30", "group_by": "endpoint"}
    ).content.decode()
    assert hostile not in page and escape(hostile) in page

    class Check(HTMLParser):
        VOID = {"meta", "link", "input", "br", "img", "rect", "line", "hr"}

        def __init__(self):
            super().__init__()
            self.open: list[str] = []
            self.bars = self.rows = 0

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "div" and (attrs.get("class") or "").startswith("bar "):
                self.bars += 1
            if tag == "tr" and "data-period" in attrs:
                self.rows += 1
            if tag not in self.VOID:
                self.open.append(tag)

        def handle_startendtag(self, tag, attrs):
            pass

        def handle_endtag(self, tag):
            if tag in self.VOID:
                return
            assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
            self.open.pop()

    check = Check()
    check.feed(page)
    assert check.open == []
    assert check.bars == 30 and check.rows == 30
