from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("reports/", views.ReportListView.as_view(), name="reports"),
    path("help/", views.HelpView.as_view(), name="help"),
    path("purchase/", views.CreditPurchaseView.as_view(), name="purchase"),
    path("refresh/", views.UsageRefreshView.as_view(), name="refresh"),
    path("test-api/", views.ApiTestView.as_view(), name="test_api"),
]
