"""Service tokens: the provider's secrets for pushing usage and asking the gate.

A service token belongs to the provider, not to a license: it reaches only the provider's
endpoints (push ingestion, the gate), and a customer's API key never reaches those. Its
secret is shown once, when it is made; only its SHA-256 is kept (the secret is 256 random
bits, so a fast hash is enough) and compared in constant time, as for API keys.
"""

from django.conf import settings
from django.db import models

from portal.models import TimeStampedModel


class ServiceToken(TimeStampedModel):
    name = models.CharField(max_length=100)
    # "tcs_" + 8 random hex digits: shown in lists, sent in every token, looked up by index.
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        permissions = [("revoke_servicetoken", "Can revoke a service token")]

    def __str__(self) -> str:
        return f"{self.name} ({self.display})"

    @property
    def display(self) -> str:
        """What lists and messages show of a token: its prefix, never the secret."""
        return f"{self.prefix}_…"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None

    @property
    def state(self) -> str:
        return "active" if self.revoked_at is None else "revoked"
