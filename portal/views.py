"""The health check (`/healthz`)."""

from django.conf import settings
from django.http import JsonResponse
from django.views import View

from portal.health import probe_database, probe_redis, probe_replica


class HealthView(View):
    """200 when the database and Redis answer; 503 naming the part that does not. The read
    replica, when configured, is reported (`replica`: up, lagging or down, with its lag) but
    does not make it 503: while it is down or behind, pages read from the primary."""

    def get(self, request):
        probes = [probe_database(), probe_redis()]
        down = [p.name for p in probes if not p.ok]
        body: dict[str, object] = {
            "status": "ok" if not down else "degraded",
            "checks": {p.name: "ok" if p.ok else "down" for p in probes},
            "down": down,
        }
        if settings.DATABASE_REPLICA_URL:
            body["replica"] = probe_replica()
        return JsonResponse(body, status=503 if down else 200)
