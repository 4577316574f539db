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
