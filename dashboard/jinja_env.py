"""The Jinja2 environment of the dashboard's sections (templates/jinja2/dashboard/sections/,
drawn by dashboard/render_cache.py): the same filters as the Django templates'
{% load dashboard %}, autoescaped, and strict about names.

Jinja2 compiles a template to Python once per process; Django's engine walks its node tree
for every variable of every row, which made the hundred-row transactions table most of a
drawn dashboard's time (docs/architecture.md, "The drawn dashboard")."""

from collections.abc import Callable
from typing import Any

from django.template.defaultfilters import pluralize
from django.urls import reverse
from jinja2 import Environment, StrictUndefined

from accounts.models import License
from dashboard.formatting import format_day
from dashboard.templatetags.dashboard import (
    chart_money,
    count,
    exact_money,
    license_url,
    money,
    money_short,
    price,
    recent_mix,
)

# Stands for the entry's id in the one URL reversed for a table (entry_urls): no real id
# is this long, and reversing validates it like any id (<int:entry_id>).
_ENTRY_ID = 987654321987654321


def entry_urls(name: str, license: License) -> Callable[[int], str]:
    """reverse(name, license_id=license.public_id, entry_id=n) for any n, from one reverse:
    a hundred rows link to their transaction (and receipts to theirs), and Django's
    reverse costs more than the rest of a row."""
    url = reverse(name, kwargs={"license_id": license.public_id, "entry_id": _ENTRY_ID})
    head, _, tail = url.rpartition(str(_ENTRY_ID))

    def url_of(entry_id: int) -> str:
        return f"{head}{int(entry_id)}{tail}"

    return url_of


def environment(**options: Any) -> Environment:
    # Django's backend passes autoescape=True (kept: descriptions come from upstream data)
    # and a lenient Undefined; a misspelt name fails the tests instead of drawing nothing.
    options["undefined"] = StrictUndefined
    env = Environment(**options)  # noqa: S701 - autoescape is on (Django's backend sets it)
    env.filters.update(
        money=money,
        money_short=money_short,
        chart_money=chart_money,
        exact_money=exact_money,
        price=price,
        count=count,
        recent_mix=recent_mix,
        pluralize=pluralize,
        day=format_day,
    )
    env.globals.update(license_url=license_url, entry_urls=entry_urls)
    return env
