"""How a moment is written for people, in one place for every room: in a license's timezone,
saying which ("Dec 7, 2026 11:01 EST (America/New_York)"), in English whatever the server's
locale. Customer pages, emails, PDFs and the staff pages that show a license's times use it."""

from datetime import datetime
from zoneinfo import ZoneInfo

# The labels of docs/product.md ("Jun 30", "Jun 2025") in English whatever the server's
# locale; plain tuples because Django's dateformat costs ~30 µs a call, 100+ times a page.
MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_local_time(moment: datetime, timezone: str) -> str:
    """A moment in a license's timezone, saying which: "Dec 7, 2026 11:01 EST
    (America/New_York)"; "Jun 1, 2025 09:00 UTC" when the zone is UTC itself."""
    local = moment.astimezone(ZoneInfo(timezone))
    text = f"{MONTH_ABBR[local.month - 1]} {local.day}, {local:%Y %H:%M} {local.tzname()}"
    return text if local.tzname() == timezone else f"{text} ({timezone})"
