"""Card payments through Stripe; its auto top-up consumer of money events and the card-refund page billing links to register here."""

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Card payments"

    def ready(self) -> None:
        # billing never imports this app: payments reads billing's money events after
        # their postings commit (the auto top-up), and tells billing's admin where a card
        # purchase is refunded (its own page, which goes through Stripe first).
        from django.urls import reverse

        from billing.admin.money import purchase_refund_page_register
        from billing.events.consumers import money_event_consumer_register
        from billing.events.types import BALANCE_MOVED, PURCHASE_REFUNDED
        from payments.models import CARD_PURCHASE_PREFIX
        from payments.receivers import (
            AUTO_TOPUP_CONSUMER,
            CARD_REFUND_EMAIL_CONSUMER,
            auto_topup_on_money_event,
            card_refund_on_money_event,
        )

        money_event_consumer_register(
            name=AUTO_TOPUP_CONSUMER, handle=auto_topup_on_money_event, types=BALANCE_MOVED
        )
        money_event_consumer_register(
            name=CARD_REFUND_EMAIL_CONSUMER,
            handle=card_refund_on_money_event,
            types=[PURCHASE_REFUNDED],
        )
        purchase_refund_page_register(
            prefix=CARD_PURCHASE_PREFIX,
            url=lambda purchase: reverse("admin:payments_card_refund", args=[purchase.pk]),
        )
