from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("reports/", views.ReportListView.as_view(), name="reports"),
    path("help/", views.HelpView.as_view(), name="help"),
    path("purchase/", views.CreditPurchaseView.as_view(), name="purchase"),
]
