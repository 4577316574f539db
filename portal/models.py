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
