"""Issue 26: every ledger line told as its movement, on every surface a customer reads.

One license with each movement: a card purchase, a refund of it to the card, a goodwill
credit, usage (a text call and an image call), a refund of a usage charge, and a
promotional grant that expired unused. Each surface is read as the customer gets it (the
rendered page, the CSV parsed, the PDF's text, the API's JSON): the card refund carries its
own label and a negative sign, never "Refunds the API call"; each surface's bridge, made
from what it shows, holds and equals the ledger; an image call is an ai_images call."""

import csv
import io
import re
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import License
from billing.credits.expiry import credits_expire
from billing.credits.services import credit_grant_issue
from billing.ledger.bridge import bridge_lifetime, bridge_month
from billing.ledger.kinds import MOVEMENTS, MOVEMENTS_BY_NAME, Bridge
from billing.ledger.selectors import balance_get
from billing.ledger.usage import calls_per_service
from billing.models import LedgerEntry
from billing.money import ZERO
from payments.services.paying import payment_start
from payments.services.refunds import payment_refund_issue
from tests.ledger import assert_ledger_consistent, charge, record, refund, usage_entry
from tests.payments.helpers import save_card

pytestmark = pytest.mark.django_db

D = Decimal
TERMS_BY_TITLE = {m.term.replace("_", " ").capitalize(): m for m in MOVEMENTS}


@dataclass
class World:
    license: License
    purchase: LedgerEntry
    card_refund: LedgerEntry
    credit: LedgerEntry
    usage_refund: LedgerEntry
    expiry: LedgerEntry
    receipt: str


@pytest.fixture
def world(localstripe, license_a, member_a, billing_user, capsys) -> World:
    license_a.timezone = "America/New_York"
    license_a.save()
    now = timezone.now()
    # A promotional grant that expires unused (the beat's run, a little later).
    credit_grant_issue(
        acting_user=billing_user,
        license=license_a,
        amount=D("2"),
        kind="promotional",
        reason="Spring promotion",
        idempotency_key="promo-1",
        expires_at=now + timedelta(minutes=1),
    )
    with time_machine.travel(now + timedelta(minutes=2), tick=False):
        assert len(credits_expire().expired) == 1
    expiry = LedgerEntry.objects.get(kind="expiry", license=license_a)
    save_card(localstripe, license_a, member_a)
    payment = payment_start(license=license_a, acting_user=member_a, amount=D("25"))
    assert payment.status == "succeeded" and payment.ledger_entry is not None
    card_refund = payment_refund_issue(
        acting_user=billing_user,
        purchase=payment.ledger_entry,
        amount=D("4"),
        reason="Bought too much",
        idempotency_key="card-refund-1",
    ).entry
    credit = refund(license_a, None, "5", billing_user, reason="Slow API week")
    charge(
        license_a,
        record(now - timedelta(minutes=30), input_tokens=1000, completion_tokens=200,
               record_id="text-call"),
        record(now - timedelta(minutes=20), input_tokens=60, images=3, record_id="image-call",
               endpoint="/v1/images/generations"),
    )  # fmt: skip
    usage_refund = refund(
        license_a, usage_entry(license_a, "image-call", "ai_images"), "0.0001", billing_user,
        reason="A blurred image",
    )  # fmt: skip
    assert_ledger_consistent(license_a)
    return World(
        license_a, payment.ledger_entry, card_refund, credit, usage_refund, expiry,
        payment.receipt_number or "",
    )  # fmt: skip


def lifetime(license: License) -> Bridge:
    return bridge_lifetime(balance_get(license)).check()


def this_month(license: License) -> Bridge:
    month = license.local_month()
    return bridge_month(license_id=license.pk, timezone=license.timezone, month=month).bridge


def money(text: str) -> Decimal:
    """ "$1,234.567890" / "-$4.000000" / "+$5.000000" → Decimal."""
    text = unescape(text).strip().replace("−", "-").replace(",", "")
    sign = -1 if text.startswith("-") else 1
    return sign * D(text.lstrip("+-").lstrip("$"))


def bridge_from_sizes(opening: Decimal, sizes: dict[str, Decimal], closing: Decimal) -> Bridge:
    return Bridge(
        opening=opening, closing=closing, **{m.term: sizes.get(m.name, ZERO) for m in MOVEMENTS}
    )


def test_all_transactions_tell_each_movement_and_add_up_to_the_balance(world, client_a):
    lic = world.license
    page = client_a.get(reverse("dashboard:transactions", kwargs={"license_id": lic.public_id}))
    body = page.content.decode()
    rows = re.findall(
        r'<tr data-entry="(\d+)">.*?<span class="type type--(\w+)">([^<]*)</span>.*?'
        r'<td class="tx-amount num money ?(positive|negative)?">(?:<span[^>]*>\w+ </span>)?([^<]*)</td>',
        body,
        re.S,
    )
    by_entry = {int(e): (movement, unescape(label), direction, money(amount))
                for e, movement, label, direction, amount in rows}  # fmt: skip
    assert by_entry[world.card_refund.pk] == (
        "purchase_refund",
        f"Refund of card purchase #{world.purchase.pk}",
        "negative",
        D("4"),
    )
    assert by_entry[world.credit.pk][:3] == ("credit", "Credit", "positive")
    assert by_entry[world.usage_refund.pk][:3] == ("usage_refund", "Refund", "positive")
    assert by_entry[world.expiry.pk][:3] == ("expiry", "Expired credit", "negative")
    assert by_entry[world.purchase.pk][:3] == ("purchase", "Purchase", "positive")
    line = body[body.index(f'data-entry="{world.credit.pk}"') :].split("</tr>", 1)[0]
    assert "Slow API week" in line
    # The bridge from the page's rows: sizes by movement, signed by the colour shown.
    sizes: dict[str, Decimal] = {}
    for movement, _, direction, amount in by_entry.values():
        assert (direction == "positive") == (MOVEMENTS_BY_NAME[movement].sign > 0) or not amount
        sizes[movement] = sizes.get(movement, ZERO) + amount
    assert bridge_from_sizes(ZERO, sizes, balance_get(lic).balance).check() == lifetime(lic)

    # Filtered by movement: only the card refund.
    only = client_a.get(
        reverse("dashboard:transactions", kwargs={"license_id": lic.public_id}),
        {"type": "purchase_refund"},
    ).content.decode()
    assert re.findall(r'<tr data-entry="(\d+)">', only) == [str(world.card_refund.pk)]


def test_the_overviews_recent_lines_tell_the_card_refund_and_the_credit(world, client_a):
    lic = world.license
    body = unescape(
        client_a.get(
            reverse("dashboard:overview", kwargs={"license_id": lic.public_id})
        ).content.decode()
    )
    assert f'type--purchase_refund">Refund of card purchase #{world.purchase.pk}</span>' in body
    assert 'type--credit">Credit</span>' in body
    assert 'type--expiry">Expired credit</span>' in body


def test_a_card_refunds_page_names_the_purchase_never_an_api_call(world, client_a):
    lic = world.license

    def page(entry):
        url = reverse(
            "dashboard:transaction", kwargs={"license_id": lic.public_id, "entry_id": entry.pk}
        )
        return unescape(client_a.get(url).content.decode())

    body = page(world.card_refund)
    assert f"Refund of card purchase #{world.purchase.pk}" in body
    assert re.search(r'data-testid="amount">-\$4\.000000<', body)
    assert "Refunds the API call" not in body and "the API call of" not in body
    assert f"/transactions/{world.purchase.pk}/" in body and "Bought too much" in body
    purchase = page(world.purchase)  # and the purchase names its refund to the card
    assert f"/transactions/{world.card_refund.pk}/" in purchase and "-$4.000000" in purchase
    credit = page(world.credit)
    assert re.search(r'data-testid="amount">\+\$5\.000000<', credit)
    assert "Credit" in credit and "Slow API week" in credit
    usage_refund = page(world.usage_refund)
    assert "the API call of" in usage_refund and "A blurred image" in usage_refund
    assert "Expired credit" in page(world.expiry)


def test_the_csv_names_each_movement_and_its_running_balance_ends_at_the_balance(world, client_a):
    lic = world.license
    response = client_a.get(reverse("dashboard:history_csv", kwargs={"license_id": lic.public_id}))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["type"] for r in rows} == {m.name for m in MOVEMENTS}
    (card_refund,) = [r for r in rows if r["entry_id"] == str(world.card_refund.pk)]
    assert (card_refund["type"], card_refund["amount"]) == ("purchase_refund", "-4.000000")
    balance = balance_get(lic).balance
    assert D(rows[0]["balance"]) == balance  # newest first: the last balance is the ledger's
    running = ZERO
    for row in reversed(rows):  # oldest first, each balance the one before plus the line
        running += D(row["amount"])
        assert D(row["balance"]) == running
    sizes: dict[str, Decimal] = {}
    for row in rows:
        sizes[row["type"]] = sizes.get(row["type"], ZERO) + abs(D(row["amount"]))
    assert bridge_from_sizes(ZERO, sizes, balance).check() == lifetime(lic)


def statement_bridge_from_html(body: str) -> Bridge:
    figures = dict(re.findall(r'<tr data-term="(\w+)">.*?<td[^>]*>(?:<strong>)?([^<]*)<', body))
    return Bridge(**{name: money(value) for name, value in figures.items()}).check()


def statement_bridge_from_text(text: str) -> Bridge:
    """The PDF's text: "Opening balance $0.000000", "- Purchase refunds $4.000000", …"""
    figures = {}
    for line in text.splitlines():
        found = re.match(
            r"\s*(?:([+-]) )?([A-Z][a-z ]+?)(?: \(to date\))?\s{2,}(-?\$[\d,.]+)\s*$", line
        )
        if not found:
            continue
        sign, title, amount = found.groups()
        if title == "Opening balance":
            figures["opening"] = money(amount)
        elif title == "Closing balance":
            figures["closing"] = money(amount)
        elif title in TERMS_BY_TITLE and sign:
            movement = TERMS_BY_TITLE[title]
            assert sign == ("+" if movement.sign > 0 else "-"), line
            figures[movement.term] = money(amount)
    return Bridge(**figures).check()


def test_the_statement_page_and_pdf_list_each_movement_and_count_calls_per_service(
    world, client_a, tmp_path
):
    lic = world.license
    month = f"{lic.local_month():%Y-%m}"
    kwargs = {"license_id": lic.public_id, "month": month}
    body = client_a.get(reverse("dashboard:statement", kwargs=kwargs)).content.decode()
    expected = this_month(lic)
    assert statement_bridge_from_html(body) == expected
    assert (expected.purchases, expected.purchase_refunds, expected.credits) == (
        D("25"), D("4"), D("5") + D("2")  # the goodwill credit and the promotional grant
    )  # fmt: skip
    assert (expected.usage_refunds, expected.expired) == (D("0.0001"), D("2"))
    services = dict(
        re.findall(r'<tr data-service="(\w+)"><td>\w+</td><td class="num">([\d,]+)</td>', body)
    )
    # Two calls: the image call is an ai_images call, the text call an ai_data call.
    assert services == {
        "ai_data": "1", "ai_data_completion": "0", "ai_images": "1"
    }  # fmt: skip
    assert re.search(r'data-testid="api-calls">2<', body)
    assert re.search(r'data-testid="usage-entries">4<', body)  # ai_data ×2, completion, images
    entries = LedgerEntry.objects.filter(license=lic).count()
    assert re.search(rf'data-testid="entries">{entries}<', body)
    assert "(America/New_York)" in body  # the grants' times, in the license's timezone

    pdf = client_a.get(reverse("dashboard:statement_pdf", kwargs=kwargs))
    path = tmp_path / "statement.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert statement_bridge_from_text(text) == expected
    assert "2 API calls, posted as 4 usage" in " ".join(text.split())
    assert "(America/New_York)" in text


def test_the_apis_statement_transactions_and_usage_say_the_same(world, client, make_api_key):
    lic = world.license
    raw = make_api_key(lic)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    base = f"/api/v1/licenses/{lic.public_id}"
    answer = client.get(f"{base}/statements/{lic.local_month():%Y-%m}", **auth).json()
    expected = this_month(lic)
    got = Bridge(
        opening=D(answer["opening_balance"]),
        closing=D(answer["closing_balance"]),
        **{m.term: D(answer[m.term]) for m in MOVEMENTS},
    ).check()
    assert got == expected
    assert answer["purchase_refunds"] == "4.000000" and answer["usage_refunds"] == "0.000100"
    assert answer["api_calls"] == 2
    assert answer["transactions"] == LedgerEntry.objects.filter(license=lic).count()
    calls = {s["service"]: s["api_calls"] for s in answer["usage_by_service"]}
    assert calls["ai_images"] == 1 and calls["ai_data"] == 1 and sum(calls.values()) == 2
    assert answer["credit"]["promotional_expired"] == "2.000000"

    items = client.get(f"{base}/transactions", **auth).json()["data"]
    (card_refund,) = [t for t in items if t["id"] == world.card_refund.pk]
    assert card_refund["movement"] == "purchase_refund" and card_refund["amount"] == "-4.000000"
    assert card_refund["label"] == f"Refund of card purchase #{world.purchase.pk}"
    (credit,) = [t for t in items if t["id"] == world.credit.pk]
    assert (credit["movement"], credit["label"]) == ("credit", "Credit")
    only = client.get(f"{base}/transactions", {"type": "purchase_refund"}, **auth).json()["data"]
    assert [t["id"] for t in only] == [world.card_refund.pk]

    today = lic.local_date().isoformat()
    usage = client.get(f"{base}/usage", {"from": today, "to": today}, **auth).json()["data"]
    by_service = {b["service"]: (b["api_calls"], b["transactions"]) for b in usage}
    assert by_service["ai_images"] == (1, 1) and by_service["ai_data"] == (1, 2)


def test_billing_history_lists_the_card_refund_with_its_purchase_in_local_time(world, client_a):
    lic = world.license
    body = unescape(
        client_a.get(
            reverse("dashboard:billing_history", kwargs={"license_id": lic.public_id})
        ).content.decode()
    )
    line = body[body.index(f'data-entry="{world.card_refund.pk}"') :].split("</tr>", 1)[0]
    assert f"Refund of card purchase #{world.purchase.pk}" in line
    assert "-$4.000000" in line and world.receipt in line and "Bought too much" in line
    local = timezone.localtime(world.card_refund.occurred_at, lic.tzinfo)
    assert f"{local:%Y %H:%M} {local.tzname()} (America/New_York)" in line
    credit = body[body.index(f'data-entry="{world.credit.pk}"') :].split("</tr>", 1)[0]
    assert "Credit" in credit and "+$5.000000" in credit and "Slow API week" in credit
    purchase = body[body.index(f'data-entry="{world.purchase.pk}"') :].split("</tr>", 1)[0]
    assert "+$25.000000" in purchase and "Receipt" in purchase


def test_calls_per_service_count_each_call_once_an_image_call_under_ai_images():
    # Two text calls (one also cached), one image call with a prompt, one image-only call,
    # one failed call that used nothing: 5 calls, flags on each call's first entry.
    sums = {
        "ai_data": (4, 4),  # text ×2, image-with-prompt, failed (a zero charge)
        "ai_data_cached": (0, 1),
        "ai_data_completion": (0, 2),
        "ai_images": (1, 2),  # the image-only call carries its own flag
    }
    assert calls_per_service(sums) == {
        "ai_data": 3, "ai_data_cached": 0, "ai_data_completion": 0, "ai_images": 2
    }  # fmt: skip
    # A text call of completion tokens only: still an ai_data call.
    assert calls_per_service({"ai_data_completion": (1, 1)}) == {
        "ai_data_completion": 0, "ai_data": 1
    }  # fmt: skip


@pytest.fixture
def make_api_key(capsys):
    def make(license: License) -> str:
        capsys.readouterr()
        call_command("api_key_create", license=license.key, name="words")
        return capsys.readouterr().out.strip()

    return make
