"""Hostname normalization for license domains."""

import re

from django.core.exceptions import ValidationError

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(value: str) -> str:
    """Return the canonical form of a hostname, or raise ValidationError saying why.

    Accepts what people paste: a URL, a hostname with a port or a path, upper case,
    a trailing dot, an internationalized name. Returns lowercase ASCII (IDNA).
    """
    text = (value or "").strip()
    if not text:
        raise ValidationError("Enter a domain, for example api.example.com.")
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in text:
        raise ValidationError("A domain cannot contain '@'.")
    if text.startswith("["):
        raise ValidationError("Enter a domain name, not an IP address.")
    text = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    text = text.rstrip(".").lower()
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValidationError(f"'{value}' is not a valid domain name.") from exc
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(lb) for lb in labels):
        raise ValidationError(f"'{value}' is not a valid domain name.")
    if labels[-1].isdigit():
        raise ValidationError("Enter a domain name, not an IP address.")
    return ascii_name
