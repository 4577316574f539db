"""What payments does when billing says a balance changed (billing.hooks.balance_changed):
decide an auto top-up under the balance lock, hand its charge (or the email saying why
there is none) to a worker after commit."""

from typing import Any

from django.db import transaction

from accounts.models import License
from billing.models import LicenseBalance
from payments.autotopup import auto_topup_decide
from payments.tasks import auto_topup_enqueue, auto_topup_notice_enqueue


def auto_topup_on_balance_change(
    sender: Any, *, license: License, balance: LicenseBalance, **kwargs: Any
) -> None:
    decision = auto_topup_decide(license=license, balance=balance)
    if decision.payment is not None:
        payment_id = decision.payment.pk
        transaction.on_commit(lambda: auto_topup_enqueue(payment_id=payment_id))
    notice = decision.notice
    if notice is not None:
        license_id = license.pk
        transaction.on_commit(
            lambda: auto_topup_notice_enqueue(
                kind=notice.kind,
                license_id=license_id,
                message=notice.message,
                switched_off=notice.switched_off,
            )
        )
