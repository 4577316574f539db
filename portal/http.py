"""The client's address, taken from a proxy header only when one is configured.

Behind a reverse proxy, set CLIENT_IP_HEADER (e.g. HTTP_X_FORWARDED_FOR) and
TRUSTED_PROXY_COUNT (how many proxies append to it). Without them the portal trusts only
the socket's address, so a client cannot pick its own address by sending a header.
"""

from django.conf import settings


def client_ip(request) -> str:
    header = settings.CLIENT_IP_HEADER
    if header:
        values = [v.strip() for v in request.META.get(header, "").split(",") if v.strip()]
        count = settings.TRUSTED_PROXY_COUNT
        # The last `count` proxies are ours; the address before them is the client's.
        if len(values) >= count > 0:
            return values[-count]
    return request.META.get("REMOTE_ADDR", "")
