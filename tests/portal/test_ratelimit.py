import datetime as dt

import pytest
import time_machine

from portal.ratelimit import rate_limit_hit

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def test_allows_the_limit_then_refuses_with_time_to_wait():
    with time_machine.travel(START, tick=False):
        decisions = [rate_limit_hit(key="csv:1", limit=3, window_seconds=60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after_seconds == 60


def test_window_resets_after_it_passes():
    with time_machine.travel(START, tick=False):
        rate_limit_hit(key="refresh:7", limit=1, window_seconds=30)
    with time_machine.travel(START + dt.timedelta(seconds=20), tick=False):
        too_soon = rate_limit_hit(key="refresh:7", limit=1, window_seconds=30)
    with time_machine.travel(START + dt.timedelta(seconds=30), tick=False):
        later = rate_limit_hit(key="refresh:7", limit=1, window_seconds=30)
    assert not too_soon.allowed and too_soon.retry_after_seconds == 10
    assert later.allowed


def test_keys_are_independent():
    rate_limit_hit(key="csv:1", limit=1, window_seconds=60)
    assert rate_limit_hit(key="csv:2", limit=1, window_seconds=60).allowed
    assert not rate_limit_hit(key="csv:1", limit=1, window_seconds=60).allowed
