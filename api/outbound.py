"""Outgoing HTTP to addresses customers give (webhook endpoints), never to our own network.

A URL is checked when it is registered and again, resolved, before every request: every
address its host resolves to must be a public one (no loopback, link-local, private,
shared, reserved or multicast range). The request then goes to the address that was
checked (the Host header and TLS name stay the hostname), so a DNS answer that changes
between the check and the connection cannot lead it inside. Loopback receivers over plain
http are allowed only where settings.WEBHOOK_ALLOW_LOOPBACK says so (development, tests).
No redirects followed. Each request ends by a wall-clock deadline (the whole attempt,
WEBHOOK_DEADLINE_SECONDS) and reads only the first WEBHOOK_MAX_ANSWER_BYTES of the answer
(portal/bounded_http.py): a receiver can neither hold a worker nor fill its memory.
"""

import functools
import ipaddress
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from api.models import DeliveryOutcome
from portal.bounded_http import DeadlineTransport, outbound_deadline, read_at_most, resolve
from portal.exceptions import ApplicationError


class UnsafeUrl(ApplicationError):
    pass


HTTPS_ONLY = (
    "Use an https:// address, e.g. https://example.com/hooks (plain http:// only to this "
    "machine, 127.0.0.1 or localhost, in development)."
)


@dataclass(frozen=True)
class Target:
    url: str  # the URL with the checked address in place of the hostname
    host: str
    scheme: str


# NAT64 for local use (RFC 8215): an operator's own translator, never a public address.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # the deprecated ::a.b.c.d


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for, where the network leads it there: IPv4-mapped
    (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), 6to4 (2002:AABB:CCDD::/48) and NAT64
    (64:ff9b::a.b.c.d). Python's `is_global` calls several of these public whatever they
    embed, so 64:ff9b::a00:5 would reach 10.0.0.5 through a NAT64 gateway."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if address.version == 6:
        if address in _LOCAL_NAT64:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return _allowed(inner)
    if address.is_loopback:
        return bool(settings.WEBHOOK_ALLOW_LOOPBACK)
    return address.is_global and not address.is_multicast


def _names_loopback(host: str) -> bool:
    """localhost, or a loopback address written out (http is refused for anything else
    before its name is even looked up)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_target(url: str, *, timeout: float | None = None) -> Target:
    """The checked target of a URL, or UnsafeUrl saying why it may not be called. Its name
    is looked up for at most `timeout` seconds (default: WEBHOOK_DEADLINE_SECONDS)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeUrl(HTTPS_ONLY, field="url")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL may not carry a user name or password.", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeUrl("The URL's port is not a number.", field="url") from exc
    if parts.scheme == "http" and not _names_loopback(host):
        raise UnsafeUrl(HTTPS_ONLY, field="url")
    try:
        infos = resolve(
            host, port, timeout=settings.WEBHOOK_DEADLINE_SECONDS if timeout is None else timeout
        )
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"{host} does not resolve to an address.", field="url") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    refused = [a for a in addresses if not _allowed(a)]
    if refused:
        raise UnsafeUrl(
            f"{host} resolves to an address inside a private network ({refused[0]}); "
            "webhooks go only to public addresses.",
            field="url",
        )
    if parts.scheme == "http" and not all(a.is_loopback for a in addresses):
        raise UnsafeUrl(HTTPS_ONLY, field="url")
    address = addresses[0]
    netloc = f"[{address}]" if address.version == 6 else str(address)
    pinned = urlunsplit((parts.scheme, f"{netloc}:{port}", parts.path or "/", parts.query, ""))
    return Target(
        url=pinned, host=host if parts.port is None else f"{host}:{parts.port}", scheme=parts.scheme
    )


@dataclass(frozen=True)
class PostResult:
    """What one POST came to: the receiver's status (None without an answer), the outcome a
    customer reads (api.models.DeliveryOutcome: plain, no internals) and the detail staff
    read (`error`, empty on success)."""

    status_code: int | None
    outcome: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One per process: building one loads the whole CA bundle (~30 ms)."""
    return httpx.create_ssl_context()


def _transport() -> DeadlineTransport:
    # Only the first bytes of an answer are ever read (read_at_most); the transport's own
    # limit is a second fence.
    return DeadlineTransport(
        deadline_seconds=settings.WEBHOOK_DEADLINE_SECONDS,
        max_bytes=max(settings.WEBHOOK_MAX_ANSWER_BYTES, 1) * 16,
        verify=_tls_context(),
        max_connections=1,
    )


def post_json(*, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
    """POST to a customer's URL once; never raises for what the receiver does.

    The whole attempt — the name lookup, connecting, TLS, sending and the answer — ends
    within WEBHOOK_DEADLINE_SECONDS of its start, and at most WEBHOOK_MAX_ANSWER_BYTES of the
    answer are read (the rest is never received: the connection is dropped)."""
    limit = settings.WEBHOOK_DEADLINE_SECONDS
    with outbound_deadline(limit):
        try:
            target = url_target(url, timeout=limit)
        except UnsafeUrl as exc:
            return PostResult(None, DeliveryOutcome.REFUSED_ADDRESS, exc.message)
        extensions = {"sni_hostname": target.host.split(":")[0]} if target.scheme == "https" else {}
        try:
            with httpx.Client(transport=_transport(), follow_redirects=False) as client:
                request = client.build_request(
                    "POST",
                    target.url,
                    content=body,
                    headers={
                        **headers,
                        "Host": target.host,
                        "Content-Type": "application/json",
                        # Raw bytes only: a compressed answer cannot unfold past the limit.
                        "Accept-Encoding": "identity",
                    },
                    extensions=extensions,
                )
                response = client.send(request, stream=True)
                try:
                    status = response.status_code
                    _, more = read_at_most(response, settings.WEBHOOK_MAX_ANSWER_BYTES)
                finally:
                    response.close()
        except httpx.TimeoutException as exc:
            return PostResult(
                None, DeliveryOutcome.TIMED_OUT, f"no complete answer within {limit:g} s ({exc})"
            )
        except httpx.HTTPError as exc:
            return PostResult(None, DeliveryOutcome.NO_CONNECTION, f"{type(exc).__name__}: {exc}")
    detail = f"answer cut at {settings.WEBHOOK_MAX_ANSWER_BYTES} bytes" if more else ""
    if 200 <= status < 300:
        return PostResult(status, DeliveryOutcome.DELIVERED, detail)
    return PostResult(status, DeliveryOutcome.answered(status), f"answered {status}; {detail}")
