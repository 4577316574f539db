"""The simulator keeps the contract, and its usage is deterministic and realistic."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from demo.upstream import demo_profiles
from tests.ledger import assert_ledger_matches_upstream, ledger_usage
from tests.processes import NOW, profile_for
from usage.services.sync import usage_sync_license
from usage.simulator import Faults
from usage.simulator.core import Simulator
from usage.upstream import upstream_summary


def get(server, path, bearer="dev-upstream-token", **params):
    return httpx.get(
        f"{server.url}{path}", params=params, headers={"Authorization": f"Bearer {bearer}"}
    )


def all_records(server, key, limit=250) -> list[dict]:
    records, cursor = [], ""
    while True:
        body = get(server, "/v1/usage", license=key, after=cursor, limit=limit).json()
        records += body["records"]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return records


@pytest.fixture
def token(settings):
    settings.UPSTREAM_TOKEN = "dev-upstream-token"


def test_pages_follow_the_cursor_to_the_end_without_gaps_or_repeats(
    start_simulator, license_a, token
):
    server = start_simulator(profiles=[profile_for(license_a, days=1)])
    first = get(server, "/v1/usage", license=license_a.key, limit=100).json()
    assert len(first["records"]) == 100 and first["has_more"] is True
    records = all_records(server, license_a.key, limit=100)
    summary = get(server, "/v1/usage/summary", license=license_a.key).json()
    assert len(records) == len({r["id"] for r in records}) == summary["records"]
    assert records[:100] == first["records"]
    last = get(
        server, "/v1/usage", license=license_a.key, after=first["next_cursor"], limit=1000
    ).json()
    end = get(server, "/v1/usage", license=license_a.key, after=last["next_cursor"]).json()
    assert end == {
        "license": license_a.key,
        "records": [],
        "next_cursor": last["next_cursor"],
        "has_more": False,
    }
    assert all(r["occurred_at"] <= "2026-11-20T12:00:00.000Z" for r in records)


def test_the_contract_refuses_bad_requests_plainly(start_simulator, license_a, token):
    server = start_simulator(profiles=[profile_for(license_a, days=1)])
    no_token = httpx.get(f"{server.url}/v1/usage", params={"license": license_a.key})
    assert no_token.status_code == 401 and no_token.headers["WWW-Authenticate"].startswith("Bearer")
    assert get(server, "/v1/usage", bearer="nope", license=license_a.key).status_code == 401
    assert get(server, "/v1/usage", license="NOBODY-0000").json() == {
        "error": "unknown license NOBODY-0000"
    }
    assert get(server, "/v1/usage", license=license_a.key, limit=1001).status_code == 400
    assert get(server, "/v1/usage", license=license_a.key, after="garbage").json() == {
        "error": "bad cursor"
    }
    assert get(server, "/v1/usage").status_code == 400
    assert get(server, "/v1/nothing").status_code == 404
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    ping = get(server, "/v1/ping", license=license_a.key).json()
    assert ping["ok"] is True and ping["license"] == license_a.key


def test_usage_is_the_same_after_a_restart_and_whether_generated_at_once_or_bit_by_bit():
    keys = ("ACME-PRO-0001", "GLOBEX-STD-0002")
    end = datetime(2025, 10, 1, tzinfo=UTC)

    def served(sim, key):
        sim.summary(key=key)  # generates up to the clock
        return [r.body for r in sim.streams[key].records]

    at_once = Simulator(profiles=demo_profiles(), seed=3, token="t", now=end)
    stepwise = Simulator(profiles=demo_profiles(), seed=3, token="t", now=end - timedelta(days=20))
    for key in keys:
        served(stepwise, key)
    stepwise.now = end
    for key in keys:
        assert served(at_once, key) == served(stepwise, key)
        assert len(served(at_once, key)) > 100
    other_seed = Simulator(profiles=demo_profiles(), seed=4, token="t", now=end)
    ids = {r["id"] for r in served(at_once, keys[0])}
    assert not ids & {r["id"] for r in served(other_seed, keys[0])}


@pytest.mark.django_db
def test_a_restarted_simulator_never_makes_the_portal_charge_twice(start_simulator, license_a):
    first = start_simulator(
        profiles=[profile_for(license_a, days=2)], now=NOW - timedelta(hours=12)
    )
    usage_sync_license(license=license_a, trigger="test")
    charged_before = ledger_usage(license_a)["records"]
    first.stop()
    # A new process would start from nothing; the sync's cursor is from the old one. Ids
    # are the same, so even a sync from the start charges nothing twice.
    start_simulator(profiles=[profile_for(license_a, days=2)], now=NOW)
    result = usage_sync_license(license=license_a, trigger="test")
    summary = upstream_summary(license_key=license_a.key)
    assert result.records_charged == summary["records"] - charged_before > 0
    assert_ledger_matches_upstream(license_a, summary)


def test_faults_never_change_the_well_formed_records():
    profiles = demo_profiles()
    now = datetime(2025, 10, 1, tzinfo=UTC)
    clean = Simulator(profiles=profiles, seed=5, token="t", now=now + timedelta(days=1))
    faulty = Simulator(
        profiles=profiles, seed=5, token="t", now=now + timedelta(days=1),
        faults=Faults(late_share=0.3, malformed_share=0.2, repeat_share=0.5),
    )  # fmt: skip
    for sim in (clean, faulty):
        sim.summary(key="GLOBEX-STD-0002")
    good = lambda sim: sorted(  # noqa: E731
        (r.body["id"], r.body["occurred_at"], r.body["input_tokens"])
        for r in sim.streams["GLOBEX-STD-0002"].records
        if r.well_formed and r.occurred_at < now
    )
    assert good(clean) == good(faulty)
    assert any(not r.well_formed for r in faulty.streams["GLOBEX-STD-0002"].records)


def test_demo_usage_looks_like_real_usage():
    sim = Simulator(
        profiles=demo_profiles(), seed=1, token="t", now=datetime(2026, 6, 1, tzinfo=UTC)
    )
    summary = sim.summary(key="ACME-PRO-0001")
    assert summary["records"] > 20_000
    assert all(
        summary[q] > 0 for q in ("input_tokens", "cached_tokens", "completion_tokens", "images")
    )
    assert 0.01 < summary["errors"] / summary["records"] < 0.06
    records = [
        r
        for r in sim.streams["ACME-PRO-0001"].records
        if r.occurred_at >= datetime(2026, 1, 1, tzinfo=UTC)
    ]
    weekday = sum(
        1
        for r in records
        if r.occurred_at.astimezone(
            sim.streams["ACME-PRO-0001"].profile.history_start.tzinfo
        ).weekday()
        < 5
    )
    assert weekday / 5 > 2 * (len(records) - weekday) / 2  # a weekday is more than twice as busy
    assert len({r.body["endpoint"] for r in records}) == 4
    assert all(r.body["request_id"].startswith("req_") for r in records)
