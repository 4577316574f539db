"""Outgoing HTTP to addresses customers give (webhook endpoints), never to our own network.

A URL is checked when it is registered and again, resolved, before every request: every
address its host resolves to must be a public one (no loopback, link-local, private,
shared, reserved or multicast range). The request then goes to the address that was
checked (the Host header and TLS name stay the hostname), so a DNS answer that changes
between the check and the connection cannot lead it inside. Loopback receivers over plain
http are allowed only where settings.WEBHOOK_ALLOW_LOOPBACK says so (development, tests).
Short timeout, no redirects followed.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

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


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
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


def url_target(url: str) -> Target:
    """The checked target of a URL, or UnsafeUrl saying why it may not be called."""
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
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
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
    status_code: int | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_json(*, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
    """POST to a customer's URL once; never raises for what the receiver does."""
    try:
        target = url_target(url)
    except UnsafeUrl as exc:
        return PostResult(None, exc.message)
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    extensions = {"sni_hostname": target.host.split(":")[0]} if target.scheme == "https" else {}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(
                target.url,
                content=body,
                headers={**headers, "Host": target.host, "Content-Type": "application/json"},
                extensions=extensions,
            )
    except httpx.TimeoutException:
        return PostResult(None, f"timed out after {timeout:g} s")
    except httpx.HTTPError as exc:
        return PostResult(None, f"could not connect ({type(exc).__name__})")
    if 200 <= response.status_code < 300:
        return PostResult(response.status_code, "")
    return PostResult(response.status_code, f"answered {response.status_code}")
