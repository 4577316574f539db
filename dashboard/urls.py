from django.urls import path

from dashboard import payment_views, views, webhook_views

app_name = "dashboard"

# Included under /l/<uuid:license_id>/ (portal/urls.py); every view uses LicenseMixin.
urlpatterns = [
    path("", views.DashboardView.as_view(), name="overview"),
    path("reports/", views.ReportListView.as_view(), name="reports"),
    path("reports/usage/", views.UsageExplorerView.as_view(), name="usage_explorer"),
    path("help/", views.HelpView.as_view(), name="help"),
    path("purchase/", views.CreditPurchaseView.as_view(), name="purchase"),
    path("refresh/", views.UsageRefreshView.as_view(), name="refresh"),
    path("test-api/", views.ApiTestView.as_view(), name="test_api"),
    path("api-keys/", views.ApiKeysView.as_view(), name="api_keys"),
    path("api-keys/<int:key_id>/revoke/", views.ApiKeyRevokeView.as_view(), name="api_key_revoke"),
    path("webhooks/", webhook_views.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<int:endpoint_id>/", webhook_views.WebhookDetailView.as_view(), name="webhook"),
    path(
        "webhooks/<int:endpoint_id>/active/",
        webhook_views.WebhookSetActiveView.as_view(),
        name="webhook_set_active",
    ),
    path(
        "webhooks/<int:endpoint_id>/rotate-secret/",
        webhook_views.WebhookSecretRotateView.as_view(),
        name="webhook_rotate_secret",
    ),
    path(
        "webhooks/<int:endpoint_id>/delete/",
        webhook_views.WebhookDeleteView.as_view(),
        name="webhook_delete",
    ),
    path(
        "webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend/",
        webhook_views.WebhookDeliveryResendView.as_view(),
        name="webhook_resend",
    ),
    path("history.csv", views.HistoryCsvView.as_view(), name="history_csv"),
    path("transactions/", views.TransactionListView.as_view(), name="transactions"),
    path(
        "transactions/<int:entry_id>/",
        views.TransactionDetailView.as_view(),
        name="transaction",
    ),
    path("statements/", views.StatementListView.as_view(), name="statements"),
    path("statements/<str:month>/", views.StatementDetailView.as_view(), name="statement"),
    path("statements/<str:month>.pdf", views.StatementPdfView.as_view(), name="statement_pdf"),
    path("settings/", views.AlertSettingsView.as_view(), name="alert_settings"),
    # Card payments (dashboard/payment_views.py); "purchase/" above is the card page when
    # Stripe is configured.
    path("payments/card/setup/", payment_views.CardSetupView.as_view(), name="card_setup"),
    path("payments/card/save/", payment_views.CardSaveView.as_view(), name="card_save"),
    path("payments/cards/", payment_views.SavedCardListView.as_view(), name="cards"),
    path("payments/auto-top-up/", payment_views.AutoTopupView.as_view(), name="auto_topup"),
    path("payments/history/", payment_views.BillingHistoryView.as_view(), name="billing_history"),
    path("payments/<int:pk>/", payment_views.PaymentDetailView.as_view(), name="payment"),
    path(
        "payments/<int:pk>/status/",
        payment_views.PaymentStatusView.as_view(),
        name="payment_status",
    ),
    path("receipts/<int:entry_id>/", payment_views.ReceiptView.as_view(), name="receipt"),
    path(
        "receipts/<int:entry_id>.pdf",
        payment_views.ReceiptPdfView.as_view(),
        name="receipt_pdf",
    ),
]
