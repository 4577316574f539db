"""Reads of spend limits: a license's credit figures now (billing.limits.figures, the one
reading the gate decides from), for the Spend limits page and the console."""

from datetime import datetime

from django.utils import timezone

from accounts.models import License
from billing.limits.figures import CreditFigures, credit_figures_read


def spend_limits_get(*, license: License, now: datetime | None = None) -> CreditFigures:
    """The license's balance, what the gate holds for it, its usage this local month and
    its limits, as of now (one query)."""
    now = now or timezone.now()
    return credit_figures_read(license_id=license.pk, now=now, month=license.local_month(now))
