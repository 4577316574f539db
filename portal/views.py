from django.http import JsonResponse
from django.views import View

from portal.health import probe_database, probe_redis


class HealthView(View):
    """200 when the database and Redis answer; 503 naming the part that does not."""

    def get(self, request):
        probes = [probe_database(), probe_redis()]
        down = [p.name for p in probes if not p.ok]
        body = {
            "status": "ok" if not down else "degraded",
            "checks": {p.name: "ok" if p.ok else "down" for p in probes},
            "down": down,
        }
        return JsonResponse(body, status=503 if down else 200)
