"""The demo licenses' usage as the upstream simulator serves it (`make run`, tests)."""

import zoneinfo
from datetime import datetime, time
from typing import Any

from demo.accounts import ACME, GLOBEX, DemoLicense
from usage.simulator import LicenseProfile

# Calls on a weekday at full volume: Acme is a busy professional account, Globex a small one.
DEMO_VOLUME = {ACME.key: 120.0, GLOBEX.key: 22.0}


def demo_profile(demo: DemoLicense, **overrides: Any) -> LicenseProfile:
    """The demo license's usage: from its first day as a customer on."""
    start = datetime.combine(demo.member_since, time(0), tzinfo=zoneinfo.ZoneInfo(demo.timezone))
    options = {
        "key": demo.key,
        "timezone": demo.timezone,
        "history_start": start,
        "weekday_calls": DEMO_VOLUME[demo.key],
        **overrides,
    }
    return LicenseProfile(**options)


def demo_profiles(**overrides: Any) -> list[LicenseProfile]:
    return [demo_profile(demo, **overrides) for demo in (ACME, GLOBEX)]
