"""`manage.py reconcile_ledger --month 2025-06 [--license KEY] [--csv PATH]`

Prints, per license, the month's balance bridge (opening + purchases − purchase refunds +
credits + usage refunds − usage − expired = closing), its credit by kind (paid sold,
promotional granted, consumed, expired, outstanding at the month's end), and every stored
figure that differs from the ledger, the credit grants included. Exit status: 0 when
everything reconciles, 1 when anything differs, 2 for a bad argument — so a scheduler or
CI can alert on it."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import License
from billing.closing.services import month_refuse_future
from billing.ledger.kinds import MOVEMENTS
from billing.reconciliation.export import reconciliation_csv_write
from billing.reconciliation.report import month_parse, reconciliation_month
from portal.exceptions import ApplicationError

EXIT_DIFFERS = 1
EXIT_BAD_ARGUMENT = 2


class Command(BaseCommand):
    help = "Reconcile the ledger for a month; exits 1 when a stored total differs from the entries."

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="YYYY-MM, in each license's timezone")
        parser.add_argument("--license", dest="license_key", help="only this license key")
        parser.add_argument("--csv", dest="csv_path", help="also write the report to this file")

    def handle(self, *args, month, license_key=None, csv_path=None, **options):
        try:
            first_day = month_parse(month)
            month_refuse_future(first_day)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_BAD_ARGUMENT) from exc
        except ApplicationError as exc:
            raise CommandError(exc.message, returncode=EXIT_BAD_ARGUMENT) from exc
        license = None
        if license_key:
            license = License.objects.filter(key=license_key).first()
            if license is None:
                raise CommandError(
                    f"No license has the key '{license_key}'.", returncode=EXIT_BAD_ARGUMENT
                )
        report = reconciliation_month(month=first_day, license=license)

        terms = [m.term for m in MOVEMENTS]
        self.stdout.write(
            f"{'license':<24} {'opening':>16} "
            + " ".join(f"{('- ' if m.sign < 0 else '+ ') + m.term:>16}" for m in MOVEMENTS)
            + f" {'closing':>16}  status"
        )
        for row in report.rows:
            self.stdout.write(
                f"{row.key:<24} {row.opening:>16} "
                + " ".join(f"{getattr(row, term):>16}" for term in terms)
                + f" {row.closing:>16}  {'ok' if row.ok else 'DIFFERS'}"
            )
            if row.grants is not None:
                g = row.grants
                self.stdout.write(
                    f"    credit: paid sold {g.paid_sold}, consumed {g.paid_consumed}, "
                    f"refunded {g.paid_refunded}, expired {g.paid_expired}, outstanding "
                    f"{g.paid_outstanding}; promotional granted {g.promotional_granted}, "
                    f"consumed {g.promotional_consumed}, expired {g.promotional_expired}, "
                    f"outstanding {g.promotional_outstanding}"
                )
            for difference in row.differences:
                self.stdout.write(f"    {difference}")
        if csv_path:
            try:
                with open(csv_path, "w", newline="", encoding="utf-8") as out:
                    reconciliation_csv_write(report, out)
            except OSError as exc:
                raise CommandError(
                    f"Could not write {csv_path}: {exc}", returncode=EXIT_BAD_ARGUMENT
                ) from exc
            self.stdout.write(f"report written to {csv_path}")

        month_label = f"{first_day:%Y-%m}"
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{month_label}: {len(report.rows)} license(s) reconcile with the ledger."
                )
            )
            return
        raise CommandError(
            f"{month_label}: {len(report.differing)} of {len(report.rows)} license(s) differ "
            "from the ledger.",
            returncode=EXIT_DIFFERS,
        )
