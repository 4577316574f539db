"""The Celery app. Configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Exactly one `celery beat` process runs this schedule (see docs/architecture.md).
app.conf.beat_schedule = {
    # Enqueues one sync task per active license; any number of workers share them. The
    # fan-out itself expires before the next one is due, so a stalled broker does not
    # release a pile of them at once.
    "usage-sync-every-five-minutes": {
        "task": "usage.sync_all_licenses",
        "schedule": 5 * 60.0,
        "options": {"expires": 4 * 60},
    },
    # Money events whose nudge was lost, or that waited on an older transaction: every
    # consumer reads from its cursor (billing/events/consumers.py).
    "billing-money-events-every-thirty-seconds": {
        "task": "billing.money_events_consume",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # Stripe events whose hand-over to a worker was lost (payments/events.py).
    "payments-pending-events-every-two-minutes": {
        "task": "payments.process_pending_events",
        "schedule": 2 * 60.0,
        "options": {"expires": 110},
    },
    # Credit grants due expire (billing/credits/expiry.py): what is left of each leaves
    # the balance once. A grant can pay for usage until the run after its expiry.
    "billing-expire-credits-every-five-minutes": {
        "task": "billing.expire_credits",
        "schedule": 5 * 60.0,
        "options": {"expires": 4 * 60},
    },
    # Low-balance alerts owed while the broker was down (billing/alerts/).
    "billing-owed-alerts-every-ten-minutes": {
        "task": "billing.send_owed_balance_alerts",
        "schedule": 10 * 60.0,
        "options": {"expires": 9 * 60},
    },
    # Invoices' and credit notes' emails whose hand-over was lost (billing/documents/).
    "billing-owed-document-emails-every-ten-minutes": {
        "task": "billing.send_owed_document_emails",
        "schedule": 10 * 60.0,
        "options": {"expires": 9 * 60},
    },
    # Webhook deliveries whose retry is due, or whose hand-over was lost (api/webhooks.py).
    "api-webhook-deliveries-every-minute": {
        "task": "api.deliver_due_webhooks",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # The gate's answers a day past their expiry (billing/limits/gate.py).
    "billing-prune-gate-holds-every-hour": {
        "task": "billing.prune_gate_holds",
        "schedule": 60 * 60.0,
        "options": {"expires": 55 * 60},
    },
    # The planner's statistics of the ledger's tables, where autovacuum is off or behind
    # (billing/ledger/statistics.py): a catalog read unless a tenth of a table changed.
    "billing-refresh-ledger-statistics-every-ten-minutes": {
        "task": "billing.refresh_ledger_statistics",
        "schedule": 10 * 60.0,
        "options": {"expires": 9 * 60},
    },
    "accounts-clear-expired-sessions-every-hour": {
        "task": "accounts.clear_expired_sessions",
        "schedule": 60 * 60.0,
        "options": {"expires": 55 * 60},
    },
}
