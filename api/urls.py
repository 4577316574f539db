"""The customer API's URLs (django-ninja) and its reference page."""

from django.urls import path

from api.v1 import urls as api_v1_urls
from api.views import ApiReferenceView

# No app_name here: django-ninja's URLs carry their own namespace ("api"), which it must
# find at the top level to build the OpenAPI document. The reference page is "api_reference".
urlpatterns = [
    path("reference/", ApiReferenceView.as_view(), name="api_reference"),
    path("", api_v1_urls),
]
