"""Login throttling beyond django-axes' (account, address) pairs (OWASP ASVS 2.2.1).

django-axes locks one account from one address after LOGIN_FAILURE_LIMIT failures. That
leaves two attacks open: many addresses guessing one account, and one address spraying
guesses over many accounts. So failures are also counted per account (whatever the
address) and per address (whatever the account), with progressive delays
(portal/throttle.py): free at first, then 2 s, 4 s, 8 s … between attempts, and locked for
the cool-off at the limit. A successful login clears its account's count, not the
address's (a sprayer logging into an account of its own must not reset its address).
"""

import hashlib

from django.conf import settings

from portal.ratelimit import wait_message
from portal.throttle import Throttle, throttle_clear, throttle_failure, throttle_wait


def _throttles() -> tuple[Throttle, Throttle]:
    cooloff = int(settings.AXES_COOLOFF_TIME.total_seconds())
    account_limit = settings.LOGIN_ACCOUNT_FAILURE_LIMIT
    address_limit = settings.LOGIN_ADDRESS_FAILURE_LIMIT
    return (
        Throttle(free=account_limit // 2, limit=account_limit, cooloff_seconds=cooloff),
        Throttle(free=address_limit // 2, limit=address_limit, cooloff_seconds=cooloff),
    )


def _keys(account: str, address: str) -> tuple[str, str]:
    # Hashed: whatever a client sends, a key is short and plain text.
    def digest(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()

    return f"login:account:{digest(account)}", f"login:address:{digest(address)}"


def login_wait_message(*, account: str, address: str) -> str:
    """Empty when this login may be tried now; otherwise what to tell the person."""
    account_throttle, address_throttle = _throttles()
    account_key, address_key = _keys(account, address)
    waits = []
    if account:
        waits.append(("for this email", throttle_wait(key=account_key, throttle=account_throttle)))
    if address:
        waits.append(
            ("from your address", throttle_wait(key=address_key, throttle=address_throttle))
        )
    where, seconds = max(waits, key=lambda w: w[1], default=("", 0))
    if not seconds:
        return ""
    return (
        wait_message(reason=f"Too many failed logins {where}", action="try", seconds=seconds)
        + " If you forgot your password, reset it."
    )


def login_failed(*, account: str, address: str) -> None:
    account_throttle, address_throttle = _throttles()
    account_key, address_key = _keys(account, address)
    if account:
        throttle_failure(key=account_key, throttle=account_throttle)
    if address:
        throttle_failure(key=address_key, throttle=address_throttle)


def login_succeeded(*, account: str) -> None:
    throttle_clear(key=_keys(account, "")[0])
