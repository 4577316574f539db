"""The URL Stripe posts its events to."""

from django.urls import path

from payments import views

app_name = "payments_webhook"

# Included under /payments/ (portal/urls.py): Stripe is not a login, its events are signed.
urlpatterns = [
    path("stripe/webhook/", views.StripeWebhookView.as_view(), name="stripe"),
]
