"""The WSGI entry point: the app, then the heap frozen once loaded (portal.heap)."""

import os

from django.core.wsgi import get_wsgi_application

from portal.heap import heap_tune

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

application = get_wsgi_application()
heap_tune()  # once per worker (gunicorn loads the app after forking)
