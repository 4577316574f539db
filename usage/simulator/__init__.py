"""A small real upstream of ours that speaks docs/upstream-api.md, for the demo and tests."""

from datetime import datetime, time

from accounts.demo import ACME, GLOBEX, DemoLicense
from usage.simulator.generator import Faults, LicenseProfile

__all__ = ["DEMO_VOLUME", "Faults", "LicenseProfile", "demo_profiles"]

# Calls on a weekday at full volume: Acme is a busy professional account, Globex a small one.
DEMO_VOLUME = {ACME.key: 120.0, GLOBEX.key: 22.0}


def demo_profile(demo: DemoLicense, **overrides) -> LicenseProfile:
    """The demo license's usage: from its first day as a customer on."""
    import zoneinfo

    start = datetime.combine(demo.member_since, time(0), tzinfo=zoneinfo.ZoneInfo(demo.timezone))
    options = {
        "key": demo.key,
        "timezone": demo.timezone,
        "history_start": start,
        "weekday_calls": DEMO_VOLUME[demo.key],
        **overrides,
    }
    return LicenseProfile(**options)


def demo_profiles(**overrides) -> list[LicenseProfile]:
    return [demo_profile(demo, **overrides) for demo in (ACME, GLOBEX)]
