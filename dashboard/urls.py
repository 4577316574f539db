"""The customer pages' URLs, namespace `dashboard`, under /l/<license public_id>/."""

from django.urls import path

from dashboard.views import (
    alerts,
    api_keys,
    documents,
    help,
    history,
    limits,
    overview,
    payments,
    refresh,
    reports,
    statements,
    transactions,
    webhooks,
)

app_name = "dashboard"

# Included under /l/<uuid:license_id>/ (portal/urls.py); every view uses LicenseMixin.
urlpatterns = [
    path("", overview.DashboardView.as_view(), name="overview"),
    path("reports/", reports.ReportListView.as_view(), name="reports"),
    path("reports/usage/", reports.UsageExplorerView.as_view(), name="usage_explorer"),
    path("help/", help.HelpView.as_view(), name="help"),
    path("purchase/", payments.CreditPurchaseView.as_view(), name="purchase"),
    path("refresh/", refresh.UsageRefreshView.as_view(), name="refresh"),
    path("test-api/", help.ApiTestView.as_view(), name="test_api"),
    path("api-keys/", api_keys.ApiKeysView.as_view(), name="api_keys"),
    path(
        "api-keys/<int:key_id>/revoke/", api_keys.ApiKeyRevokeView.as_view(), name="api_key_revoke"
    ),
    path("webhooks/", webhooks.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<int:endpoint_id>/", webhooks.WebhookDetailView.as_view(), name="webhook"),
    path(
        "webhooks/<int:endpoint_id>/active/",
        webhooks.WebhookSetActiveView.as_view(),
        name="webhook_set_active",
    ),
    path(
        "webhooks/<int:endpoint_id>/rotate-secret/",
        webhooks.WebhookSecretRotateView.as_view(),
        name="webhook_rotate_secret",
    ),
    path(
        "webhooks/<int:endpoint_id>/delete/",
        webhooks.WebhookDeleteView.as_view(),
        name="webhook_delete",
    ),
    path(
        "webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend/",
        webhooks.WebhookDeliveryResendView.as_view(),
        name="webhook_resend",
    ),
    path("history.csv", history.HistoryCsvView.as_view(), name="history_csv"),
    path("transactions/", transactions.TransactionListView.as_view(), name="transactions"),
    path(
        "transactions/<int:entry_id>/",
        transactions.TransactionDetailView.as_view(),
        name="transaction",
    ),
    path("statements/", statements.StatementListView.as_view(), name="statements"),
    path(
        "statements/<int:year>.pdf",
        statements.StatementYearPdfView.as_view(),
        name="statements_year_pdf",
    ),
    path("statements/<str:month>/", statements.StatementDetailView.as_view(), name="statement"),
    path("statements/<str:month>.pdf", statements.StatementPdfView.as_view(), name="statement_pdf"),
    path("settings/", alerts.AlertSettingsView.as_view(), name="alert_settings"),
    path("spend-limits/", limits.SpendLimitsView.as_view(), name="spend_limits"),
    # Card payments (dashboard/views/payments.py); "purchase/" above is the card page when
    # Stripe is configured.
    path("payments/card/setup/", payments.CardSetupView.as_view(), name="card_setup"),
    path("payments/card/save/", payments.CardSaveView.as_view(), name="card_save"),
    path("payments/cards/", payments.SavedCardListView.as_view(), name="cards"),
    path("payments/auto-top-up/", payments.AutoTopupView.as_view(), name="auto_topup"),
    path("payments/history/", payments.BillingHistoryView.as_view(), name="billing_history"),
    path("payments/<int:pk>/", payments.PaymentDetailView.as_view(), name="payment"),
    path(
        "payments/<int:pk>/status/",
        payments.PaymentStatusView.as_view(),
        name="payment_status",
    ),
    path("documents/", documents.DocumentListView.as_view(), name="documents"),
    path("documents/<str:number>.pdf", documents.DocumentPdfView.as_view(), name="document_pdf"),
    path("documents/<int:year>.zip", documents.DocumentZipView.as_view(), name="documents_zip"),
    path("billing-details/", documents.BillingDetailsView.as_view(), name="billing_details"),
    path("receipts/<int:entry_id>/", payments.ReceiptView.as_view(), name="receipt"),
    path(
        "receipts/<int:entry_id>.pdf",
        payments.ReceiptPdfView.as_view(),
        name="receipt_pdf",
    ),
]
