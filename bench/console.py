"""5. The staff console and All transactions at the largest license, against the dashboard's
time class (part 1's p95 goal).

In-process through Django's test client, as part 1: the whole request, no network. A
Support login (staff, second factor verified) reads the admin's ledger of the license with
its running balance on the first, middle and last keyset page and billing's list of ledger
entries filtered to it, and searches the licenses by key, part of a key and member email; the license's owner reads the dashboard's All
transactions on its first, middle and last page. The pages are requested round-robin so
drift in the machine's load hits each alike.
"""

import os
import re
import time
from urllib.parse import urlencode

from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import License, User
from accounts.otp import staff_otp_enrol
from accounts.roles import SUPPORT
from bench.dashboard import SqlTimer
from bench.stats import summary_ms
from billing.history.transactions import Cursor
from billing.ledger.pages import PAGE_SIZE
from billing.ledger.selectors import balance_get
from billing.models import LedgerEntry

REQUESTS = 150
WARMUP = 10
STAFF_EMAIL = "bench-support@portal.example"
DASHBOARD = "dashboard (part 1's page, for reference)"
FOUND_KEY = re.compile(r'<td class="field-key">([^<]+)</td>')


def staff_client() -> Client:
    """A Support login whose session passed the second factor, as the admin's login leaves it."""
    user = User.objects.filter(email=STAFF_EMAIL).first()
    if user is None:
        user = User.objects.create_user(email=STAFF_EMAIL, password=None, is_staff=True)
        user.groups.add(Group.objects.get(name=SUPPORT))
    device = TOTPDevice.objects.filter(user=user).first()
    if device is None:
        staff_otp_enrol(acting_user=None, user=user)
        device = TOTPDevice.objects.get(user=user)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _position(license: License, offset: int, *, oldest_first: bool = False) -> LedgerEntry:
    """The entry `offset` places from the newest (or the oldest): one index walk, set-up only."""
    order = ("occurred_at", "id") if oldest_first else ("-occurred_at", "-id")
    return LedgerEntry.objects.for_license(license).order_by(*order).only("occurred_at")[offset]


def urls_for(license: License, entries: int, member_email: str) -> dict[str, tuple[str, str]]:
    """label -> (who, url): who is "staff" or "owner"."""
    ledger = reverse("admin:accounts_license_ledger", args=[license.pk])
    middle = _position(license, entries // 2)
    # The last page holds the oldest PAGE_SIZE entries: those before the next-oldest one.
    last = _position(license, PAGE_SIZE, oldest_first=True)

    def ledger_before(entry: LedgerEntry) -> str:
        return ledger + "?" + urlencode({"before": entry.occurred_at.isoformat(), "id": entry.pk})

    search = reverse("admin:accounts_license_changelist")
    transactions = reverse("dashboard:transactions", kwargs={"license_id": license.public_id})
    mid_cursor = Cursor(middle.occurred_at, middle.pk)
    return {
        "admin ledger, first page": ("staff", ledger),
        "admin ledger, middle page": ("staff", ledger_before(middle)),
        "admin ledger, last page": ("staff", ledger_before(last)),
        "billing's ledger list, filtered to the license": (
            "staff",
            reverse("admin:billing_ledgerentry_changelist") + f"?license__id__exact={license.pk}",
        ),
        "staff search, key": ("staff", search + "?" + urlencode({"q": license.key})),
        "staff search, part of a key": (
            "staff",
            search + "?" + urlencode({"q": license.key[2:-1]}),
        ),
        "staff search, member email": ("staff", search + "?" + urlencode({"q": member_email})),
        "All transactions, first page": ("owner", transactions),
        "All transactions, middle page": ("owner", f"{transactions}?before={mid_cursor}"),
        "All transactions, last page": ("owner", f"{transactions}?oldest=1"),
        # Part 1's page in the same rounds: the reference the others are compared with.
        DASHBOARD: (
            "owner",
            reverse("dashboard:overview", kwargs={"license_id": license.public_id}),
        ),
    }


def run(env: dict, key: str, requests: int = REQUESTS) -> dict:
    license = env["licenses"][key]
    entries = balance_get(license).entries
    clients = {"staff": staff_client(), "owner": Client()}
    clients["owner"].force_login(env["user"])
    urls = urls_for(license, entries, env["user"].email)
    for who, url in urls.values():
        for _ in range(WARMUP):
            response = clients[who].get(url)
            assert response.status_code == 200, (url, response.status_code)
    queries = {}
    found = {}
    for label, (who, url) in urls.items():
        with CaptureQueriesContext(connection) as ctx:
            response = clients[who].get(url)
        queries[label] = len(ctx.captured_queries)
        if who == "staff" and "search" in label:  # what it found: the list's key column
            found[label] = FOUND_KEY.findall(response.content.decode())
    timings: dict[str, list[float]] = {label: [] for label in urls}
    sql: dict[str, list[float]] = {label: [] for label in urls}
    timer = SqlTimer()
    load_before = os.getloadavg()[0]
    with connection.execute_wrapper(timer):
        for _ in range(requests):
            for label, (who, url) in urls.items():
                timer.seconds = 0.0
                started = time.perf_counter()
                response = clients[who].get(url)
                timings[label].append(time.perf_counter() - started)
                sql[label].append(timer.seconds)
                assert response.status_code == 200
    return {
        # The machine's 1-minute load average as the rounds began and ended (2 cores).
        "load": [load_before, os.getloadavg()[0]],
        "key": key,
        "reference": DASHBOARD,
        "entries": entries,
        "pages": {
            label: {
                **summary_ms(timings[label]),
                "sql_p50": summary_ms(sql[label])["p50"],
                "queries": queries[label],
                **({"found": found[label]} if label in found else {}),
            }
            for label in urls
        },
    }
