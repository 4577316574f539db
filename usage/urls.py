from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("refresh/", views.UsageRefreshView.as_view(), name="refresh"),
    path("test-api/", views.ApiTestView.as_view(), name="test_api"),
]
