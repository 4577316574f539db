"""`manage.py sync_usage`: sync one license or every active one now, with a table of results."""

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.models import License
from usage.selectors import license_ids_to_sync
from usage.services.results import SyncOutcome, SyncResult
from usage.services.sync import usage_sync_license

COLUMNS = (
    "pages",
    "records_received",
    "records_charged",
    "records_duplicate",
    "records_quarantined",
)
HEADERS = ("pages", "records", "charged", "duplicates skipped", "quarantined")


_STATUS = {
    SyncOutcome.BUSY: "skipped (already running)",
    SyncOutcome.FAILED: "error",
    SyncOutcome.COMPLETE: "complete",
    SyncOutcome.PARTIAL: "more to fetch",
}


class Command(BaseCommand):
    help = "Sync usage from the upstream now: one license (--license KEY) or every active one."

    def add_arguments(self, parser):
        parser.add_argument(
            "--license", dest="key", help="license key (default: every active license)"
        )
        parser.add_argument(
            "--max-pages", type=int, default=None, help="stop after this many pages"
        )

    def handle(self, *args, key, max_pages, **options):
        if key:
            license = License.objects.filter(key=key).first()
            if license is None:
                raise CommandError(f"No license with key {key}.")
            licenses = [license]
        else:
            licenses = list(License.objects.filter(pk__in=license_ids_to_sync()).order_by("name"))
        rows: list[tuple[License, SyncResult]] = []
        for license in licenses:
            rows.append((license, self.sync_one(license, max_pages)))
        self.summary(rows)
        if any(result.outcome is SyncOutcome.FAILED for _, result in rows):
            sys.exit(1)

    def sync_one(self, license: License, max_pages: int | None) -> SyncResult:
        self.stdout.write(f"{license.key} ({license.name})")
        self.stdout.flush()
        interactive = self.stdout.isatty()
        bar = tqdm(desc=f"  {license.key}", unit=" page", disable=not interactive, leave=False)

        def progress(result: SyncResult) -> None:
            if interactive:
                bar.update(1)
                bar.set_postfix(
                    charged=result.records_charged, quarantined=result.records_quarantined
                )
            else:
                self.stdout.write(
                    f"  page {result.pages}: {result.records_received} records, "
                    f"{result.records_charged} charged, {result.records_duplicate} duplicates skipped, "
                    f"{result.records_quarantined} quarantined"
                )
                self.stdout.flush()

        try:
            result = usage_sync_license(
                license=license, trigger="shell", max_pages=max_pages, on_page=progress
            )
        finally:
            bar.close()
        if result.outcome is SyncOutcome.BUSY:
            self.stdout.write("  another sync of this license is running; skipped")
        elif result.outcome is SyncOutcome.FAILED:
            self.stderr.write(f"  failed: {result.error}")
        elif result.outcome is SyncOutcome.PARTIAL:
            self.stdout.write("  stopped with more to fetch (run again to continue)")
        return result

    def summary(self, rows: list[tuple[License, SyncResult]]) -> None:
        width = max([len("license"), *(len(lic.key) for lic, _ in rows)])
        self.stdout.write("")
        self.stdout.write(
            "  ".join(
                [f"{'license':<{width}}", *(f"{h:>{max(len(h), 7)}}" for h in HEADERS), "status"]
            )
        )
        for license, result in rows:
            status = _STATUS[result.outcome]
            cells = [
                f"{getattr(result, c):>{max(len(h), 7)}}"
                for c, h in zip(COLUMNS, HEADERS, strict=True)
            ]
            self.stdout.write("  ".join([f"{license.key:<{width}}", *cells, status]))
