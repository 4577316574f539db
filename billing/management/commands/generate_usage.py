"""Fill a license with N realistic ledger entries over D days, fast (COPY), for load and
benchmark work. Totals and daily rollups are rebuilt from the ledger afterwards, so the
license stays exactly consistent (reconcile_ledger finds nothing)."""

import random
import uuid
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.models import License
from billing.ledger.posting import lock_balance
from billing.ledger.rebuild import license_totals_rebuild
from billing.ledger.statistics import ledger_statistics_refresh
from billing.ledger.usage import usage_external_id
from billing.models import Service
from billing.money import charge_for, quantize_money
from billing.prices.selectors import prices_current

COLUMNS = (
    "license_id", "kind", "service", "amount", "tokens", "images", "api_calls",
    "description", "occurred_at", "recorded_at", "external_id", "reason",
    "request_id", "endpoint", "status",
)  # fmt: skip
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/v1/images/analyze")


class Command(BaseCommand):
    help = "Load N realistic entries (all four services, purchases, refunds) into a license."

    def add_arguments(self, parser):
        parser.add_argument("--license", required=True, help="license key")
        parser.add_argument("--entries", type=int, required=True)
        parser.add_argument("--days", type=int, default=365)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, license, entries, days, seed, **options):
        target = License.objects.filter(key=license).first()
        if target is None:
            raise CommandError(f"No license with key {license!r}.")
        if entries <= 0 or days <= 0:
            raise CommandError("--entries and --days must be positive.")
        rng = random.Random(seed)
        prices = prices_current()
        run = uuid.uuid4().hex[:10]
        end = timezone.now()
        start = end - timedelta(days=days)
        step = (end - start) / entries
        with transaction.atomic():
            lock_balance(target)
            with (
                connection.cursor() as cursor,
                cursor.connection.cursor().copy(
                    f"COPY billing_ledgerentry ({', '.join(COLUMNS)}) FROM STDIN"
                ) as copy,
                tqdm(total=entries, unit="entry", unit_scale=True, disable=None) as bar,
            ):
                rows = self.rows(target, rng, prices, run, start, step, entries, end)
                for row in rows:
                    copy.write_row(row)
                    bar.update()
            balance = license_totals_rebuild(license=target)
        # A bulk load: the planner's statistics are refreshed now, not when autovacuum comes.
        ledger_statistics_refresh()
        self.stdout.write(
            f"{target.name}: {balance.entries:,} entries, balance ${balance.balance:,}, "
            f"spent ${balance.total_spent:,}, {balance.api_calls:,} API calls"
        )

    def rows(self, license, rng, prices, run, start, step, entries, now):
        written = 0
        spent_since_purchase = Decimal("0")
        while written < entries:
            at = start + step * written
            roll = rng.random()
            if roll < 0.0005:
                amount = quantize_money(max(Decimal("5"), spent_since_purchase * Decimal("1.2")))
                spent_since_purchase = Decimal("0")
                yield self.row(
                    license,
                    "purchase",
                    "",
                    amount,
                    0,
                    0,
                    0,
                    "Credit purchase",
                    at,
                    now,
                    f"gen-{run}-{written}",
                )
                written += 1
                continue
            if roll < 0.001:
                amount = quantize_money(Decimal(rng.randint(1, 100)) / 100)
                yield self.row(
                    license,
                    "credit",
                    "",
                    amount,
                    0,
                    0,
                    0,
                    "Goodwill credit",
                    at,
                    now,
                    f"gen-{run}-{written}",
                    "generated goodwill credit",
                )
                written += 1
                continue
            # One API call: text (input, maybe cached, completion) or images.
            endpoint = rng.choice(ENDPOINTS)
            if endpoint == "/v1/images/analyze":
                parts = [(Service.AI_IMAGES, rng.randint(1, 40))]
            else:
                parts = [(Service.AI_DATA, rng.randint(50, 8000))]
                if rng.random() < 0.3:
                    parts.append((Service.AI_DATA_CACHED, rng.randint(100, 20000)))
                parts.append((Service.AI_DATA_COMPLETION, rng.randint(20, 2000)))
            request = f"req_{run}_{written}"
            for i, (service, quantity) in enumerate(parts):
                if written >= entries:
                    break
                amount = -charge_for(quantity, prices[service])
                spent_since_purchase -= amount
                images = quantity if service == Service.AI_IMAGES else 0
                yield self.row(
                    license,
                    "usage",
                    service,
                    amount,
                    quantity - images,
                    images,
                    1 if i == 0 else 0,
                    f"{endpoint} ({request})",
                    at,
                    now,
                    usage_external_id(request, service),
                    call=(request, endpoint, "success"),
                )
                written += 1

    @staticmethod
    def row(
        license,
        kind,
        service,
        amount,
        tokens,
        images,
        api_calls,
        description,
        at,
        now,
        external_id,
        reason="",
        call=("", "", ""),
    ):
        """One COPY row; `call` is a usage entry's (request id, endpoint, status)."""
        return (
            license.pk,
            kind,
            service,
            amount,
            tokens,
            images,
            api_calls,
            description,
            at,
            now,
            external_id,
            reason,
            *call,
        )
