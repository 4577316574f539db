"""Admin pieces every app's admin shares."""

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Staff with the view permission read these rows; nobody adds, changes or deletes
    them through the admin (they are written by services only)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
