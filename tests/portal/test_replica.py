"""The read replica, for real: a private primary and its streaming standby
(`pg_basebackup -R`, tests/services.py), the portal under gunicorn pointed at both, and
customers' sessions over HTTP.

What a customer relies on: their own purchase shows at once, even while the replica has
not replayed it; another person's pages may show the replica's slightly older snapshot,
which catches up; and a replica that stops or hangs never stops the dashboard.
"""

import json
import re
from datetime import UTC, datetime

import httpx
import pytest

from tests.matching import search
from tests.payments.conftest import (  # noqa: F401 (a fixture)
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    localstripe_server,
)
from tests.processes import WebServer, child_env, manage, wait_for
from tests.services import HangingServer, PrivatePostgres, PrivateStandby, private_child

pytestmark = pytest.mark.faults  # private servers, like the fault suite (runs in make test)


@pytest.fixture(scope="session")
def streaming_pair():
    """A migrated private primary and its streaming standby, removed after the session."""
    primary = PrivatePostgres()
    primary.database = "portal_replica"
    standby = None
    try:
        primary.start()
        primary.create_database()
        result = manage("migrate", "--noinput", env=child_env(primary.url), timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        standby = PrivateStandby(primary).start()
        wait_for(standby.caught_up, message="the standby to catch up")
        yield primary, standby
    finally:
        if standby is not None:
            standby.close()
        primary.close()


def portal_env(primary, replica_url: str, localstripe=None, **extra: str) -> dict:
    settings = {
        "DATABASE_REPLICA_URL": replica_url,
        "DB_CONN_MAX_AGE": "60",  # persistent connections, as in production
        # Generous limits: a paused replay must not make the replica count as lagging here.
        "REPLICA_MAX_LAG_SECONDS": "3600",
        "REPLICA_MAX_LAG_BYTES": str(1 << 40),
        "REPLICA_CHECK_SECONDS": "0",
        "REPLICA_RETRY_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
    }
    env = child_env(primary.url)
    env.update(settings)
    env.update(extra)
    if localstripe is not None:
        env.update(
            STRIPE_SECRET_KEY=SECRET_KEY,
            STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=localstripe.url,
            STRIPE_JS_URL=f"{localstripe.url}/js.stripe.com/v3/",
        )
    return env


@pytest.fixture(scope="module")
def portal(streaming_pair, localstripe_server):  # noqa: F811
    primary, standby = streaming_pair
    server = WebServer(portal_env(primary, standby.url, localstripe_server))
    yield server
    server.stop()


@pytest.fixture
def start_portal(streaming_pair):
    """start_portal(replica_url=None, **settings) -> WebServer: the portal with settings of
    the test's own (default replica: the standby), stopped after the test."""
    primary, standby = streaming_pair
    started: list[WebServer] = []

    def start(replica_url: str | None = None, **settings: str) -> WebServer:
        server = WebServer(portal_env(primary, replica_url or standby.url, **settings))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class Person:
    """One person's browser session against the running portal, over HTTP."""

    def __init__(self, base_url: str, email: str, password: str):
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.http.get("/accounts/login/")
        response = self.post("/accounts/login/", {"username": email, "password": password})
        assert response.status_code == 302, response.text[:500]

    def post(self, path: str, data: dict) -> httpx.Response:
        token = self.http.cookies["csrftoken"]
        return self.http.post(
            path, data={**data, "csrfmiddlewaretoken": token}, headers={"X-CSRFToken": token}
        )

    def page(self, path: str) -> str:
        response = self.http.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
        return response.text


def balance_shown(page: str) -> str:
    section = page.split('id="balance-section"', 1)[1]
    return search(r"-?\$[0-9,]+\.[0-9]{6}", section).group(0)


def customer(streaming_pair, key: str):
    primary, _ = streaming_pair
    return private_child(
        primary,
        "customer_create",
        key,
        f"owner@{key.lower()}.example",
        f"member@{key.lower()}.example",
    )


def test_own_purchase_shows_at_once_while_replay_is_paused_and_others_see_the_replica(
    streaming_pair,
    portal,
    localstripe_server,  # noqa: F811
):
    primary, standby = streaming_pair
    made = customer(streaming_pair, "RYW-000001")
    home = f"/l/{made['public_id']}/"
    owner = Person(portal.url, "owner@ryw-000001.example", made["password"])
    member = Person(portal.url, "member@ryw-000001.example", made["password"])
    # The owner saves a card, as the browser does through Stripe.js.
    setup = owner.post(f"{home}payments/card/setup/", {})
    assert setup.status_code == 200, setup.text
    secret = setup.json()["client_secret"]
    assert localstripe_server.confirm_setup(secret).status_code == 200
    saved = owner.post(f"{home}payments/card/save/", {"setup_intent": secret.split("_secret_")[0]})
    assert saved.status_code == 200, saved.text

    made_key = manage(
        "api_key_create", "--license", "RYW-000001", "--name", "books", env=child_env(primary.url)
    )
    assert made_key.returncode == 0, made_key.stderr
    api = httpx.Client(
        base_url=f"{portal.url}/api/v1/licenses/{made['public_id']}",
        headers={"Authorization": f"Bearer {made_key.stdout.strip()}"},
        timeout=30,
    )

    def api_balance() -> str:
        response = api.get("/balance")
        assert response.status_code == 200, response.text
        return response.json()["balance"]

    wait_for(standby.caught_up, message="the standby to replay the logins, card and key")
    assert balance_shown(member.page(home)) == "$0.000000"
    standby.replay_pause()
    try:
        bought = owner.post(f"{home}purchase/", {"preset": "25.00"})
        assert bought.status_code == 302, bought.text[:500]
        # The replica has not replayed the purchase...
        assert not standby.caught_up()
        health = portal_health(portal)
        assert health["replica"]["state"] == "up" and health["replica"]["lag_bytes"] > 0
        # ...yet the buyer sees it everywhere at once: their session reads the primary.
        assert balance_shown(owner.page(home)) == "$25.000000"
        assert "25.000000" in owner.page(f"{home}transactions/")
        month = f"{datetime.now(UTC):%Y-%m}"  # the license is in UTC
        assert "$25.000000" in owner.page(f"{home}statements/{month}/")
        history = owner.http.get(f"{home}history.csv")
        assert history.status_code == 200 and ",purchase,," in history.text
        assert ",25.000000," in history.text
        # Another member of the license reads the replica: its snapshot, before the purchase.
        assert balance_shown(member.page(home)) == "$0.000000"
        assert "25.000000" not in member.page(f"{home}transactions/")
        # So do the API's reads (a key is no person's session: no read-your-writes).
        assert api_balance() == "0.000000"
    finally:
        standby.replay_resume()
    # Replay resumes: the member's pages and the API catch up by themselves.
    wait_for(lambda: balance_shown(member.page(home)) == "$25.000000", message="the member")
    assert api_balance() == "25.000000"
    # Statements are read by raw SQL (the reconciliation's query; the API's from rollups):
    # from the replica too, and the same money.
    assert "$25.000000" in member.page(f"{home}statements/{month}/")
    statement = api.get(f"/statements/{month}")
    assert statement.status_code == 200 and statement.json()["purchases"] == "25.000000"
    # And once the replica has replayed the owner's write, the owner reads the replica
    # again: pausing replay now freezes what the owner sees too, until the next write.
    wait_for(standby.caught_up, message="the standby to catch up")
    owner.page(home)  # the caught-up replica releases the session from the primary
    standby.replay_pause()
    try:
        assert balance_shown(owner.page(home)) == "$25.000000"
        # Who may see what is never read from the replica: a key revoked while replay is
        # paused (the replica still holds it as valid) is refused at once.
        with primary.connect() as conn:
            (key_id,) = conn.execute("SELECT id FROM api_apikey WHERE name = 'books'").fetchone()
        revoked = owner.post(f"{home}api-keys/{key_id}/revoke/", {})
        assert revoked.status_code == 302
        assert api.get("/balance").status_code == 401
    finally:
        standby.replay_resume()


def portal_health(server: WebServer) -> dict:
    response = httpx.get(f"{server.url}/healthz", timeout=30)
    assert response.status_code == 200, response.text
    return json.loads(response.text)


def test_a_replica_stopped_under_the_pages_leaves_them_on_the_primary_and_healthz_says_so(
    streaming_pair, start_portal
):
    _, standby = streaming_pair
    made = customer(streaming_pair, "DOWN-000002")
    home = f"/l/{made['public_id']}/"
    # The process reads the replica's state once an hour: it still believes the replica is
    # up when it stops, so the page's own read on the replica is what fails.
    server = start_portal(REPLICA_CHECK_SECONDS="3600")
    member = Person(server.url, "member@down-000002.example", made["password"])
    wait_for(standby.caught_up, message="the standby to replay the login")
    assert portal_health(server)["replica"]["state"] == "up"
    # The login's write is replayed: this page reads the replica, and the process keeps
    # its connection to it open (persistent connections).
    member.page(home)
    standby.stop()
    try:
        # The open connection is dead and the server refuses new ones: the pages come
        # from the primary, in full.
        assert balance_shown(member.page(home)) == "$0.000000"
        member.page(f"{home}transactions/")
        member.page(f"{home}statements/")
        health = portal_health(server)  # 200: the portal serves without its replica
        assert health["status"] == "ok" and health["down"] == []
        assert health["replica"]["state"] == "down" and health["replica"]["detail"]
        assert "replica: " in server.output()  # the fallback is logged
    finally:
        standby.start()
    wait_for(lambda: portal_health(server)["replica"]["state"] == "up", message="replica")
    assert balance_shown(member.page(home)) == "$0.000000"


def test_a_hanging_replica_costs_one_connect_timeout_per_retry_interval_not_one_per_page(
    streaming_pair, start_portal
):
    made = customer(streaming_pair, "HANG-000003")
    home = f"/l/{made['public_id']}/"
    with HangingServer() as hanging:
        server = start_portal(
            hanging.url("postgres", "/portal_replica"),
            REPLICA_RETRY_SECONDS="3600",
            REPLICA_CONNECT_TIMEOUT="2",
        )
        member = Person(server.url, "member@hang-000003.example", made["password"])
        # The server's first look at the replica (its /healthz at start) waited out the
        # connect timeout (libpq may try twice: with and without TLS)...
        assert balance_shown(member.page(home)) == "$0.000000"
        attempts = hanging.accepted
        assert attempts >= 1
        # ...then the process leaves it alone: these pages wait on nothing.
        for _ in range(5):
            assert balance_shown(member.page(home)) == "$0.000000"
        assert hanging.accepted == attempts
        health = portal_health(server)
        assert health["replica"]["state"] == "down"


def test_a_replica_behind_its_lag_limit_is_left_for_the_primary_and_metrics_say_how_far(
    streaming_pair, start_portal
):
    primary, standby = streaming_pair
    made = customer(streaming_pair, "LAG-000004")
    home = f"/l/{made['public_id']}/"
    server = start_portal(REPLICA_MAX_LAG_BYTES="0", METRICS_TOKEN="scrape-me")
    member = Person(server.url, "member@lag-000004.example", made["password"])
    wait_for(standby.caught_up, message="the standby to replay the login")
    assert portal_health(server)["replica"]["state"] == "up"
    standby.replay_pause()
    try:
        # Money arrives on the primary (the billing team, a sync) while replay is paused:
        # the replica is now behind by more than the limit (0 bytes here).
        private_child(primary, "charge_create", "LAG-000004")
        assert balance_shown(member.page(home)) == "$9.400000"  # from the primary
        replica = portal_health(server)["replica"]
        assert replica["state"] == "lagging" and replica["lag_bytes"] > 0
        metrics = httpx.get(
            f"{server.url}/metrics", headers={"Authorization": "Bearer scrape-me"}, timeout=30
        ).text
        assert "portal_replica_up 0.0" in metrics
        lag = re.search(r"^portal_replica_lag_bytes (\S+)$", metrics, re.MULTILINE)
        assert lag is not None and float(lag.group(1)) > 0
    finally:
        standby.replay_resume()
    # Caught up again (with a 0-byte limit, any new WAL counts as behind for a moment).
    wait_for(lambda: portal_health(server)["replica"]["state"] == "up", message="caught up")
