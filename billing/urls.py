from django.urls import path

from billing import views

app_name = "billing"

# Included under /l/<uuid:license_id>/ (portal/urls.py); every view uses LicenseMixin.
urlpatterns = [
    path("history.csv", views.HistoryCsvView.as_view(), name="history_csv"),
]
