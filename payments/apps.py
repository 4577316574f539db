from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Card payments"

    def ready(self) -> None:
        from billing.hooks import balance_changed, purchase_refunder_register
        from payments.receivers import auto_topup_on_balance_change
        from payments.services import payment_refund_issue

        balance_changed.connect(auto_topup_on_balance_change, dispatch_uid="payments.autotopup")
        purchase_refunder_register(prefix="pi:", refunder=payment_refund_issue)
