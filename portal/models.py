"""The abstract model every table shares, and the one way tenant rows are filtered (`for_license`)."""

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TenantQuerySet(models.QuerySet):
    """Tenant-owned rows are filtered by one method, so a forgotten filter stands out."""

    def for_license(self, license):
        return self.filter(license=license)


class RateLimit(models.Model):
    """A fixed-window counter per key (e.g. "csv:<license id>"), kept in PostgreSQL so
    limits hold across web processes and keep working when Redis is down."""

    key = models.CharField(max_length=200, primary_key=True)
    window_start = models.DateTimeField()
    hits = models.IntegerField()

    def __str__(self):
        return f"{self.key}: {self.hits} since {self.window_start:%H:%M:%S}"


class Lease(models.Model):
    """A claim on a piece of work that ends by itself: held by `holder` until `expires_at`
    (portal/leases.py). Used where a process must not wait on a network call while holding
    a database lock: the lease is taken and released in short transactions, and a process
    that dies while holding one only delays the work until the lease expires."""

    key = models.CharField(max_length=200, primary_key=True)
    holder = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"{self.key} until {self.expires_at:%H:%M:%S}"


class CircuitBreaker(models.Model):
    """The health of one dependency as the web sees it (portal/breaker.py): failures in a
    row and, once open, until when callers are answered at once without calling it."""

    name = models.CharField(max_length=100, primary_key=True)
    consecutive_failures = models.IntegerField(default=0)
    opened_until = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    def __str__(self):
        return f"{self.name}: {self.consecutive_failures} failures"


class FailureCount(models.Model):
    """Failures in a row under a key (e.g. "login:account:<email>"), for progressive delays
    (portal/throttle.py). A count older than its cool-off is stale and starts again."""

    key = models.CharField(max_length=300, primary_key=True)
    failures = models.IntegerField()
    last_failure_at = models.DateTimeField()

    def __str__(self):
        return f"{self.key}: {self.failures}"
