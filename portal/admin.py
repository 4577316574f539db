class ReadOnlyAdminMixin:
    """Staff with the view permission read these rows; nobody adds, changes or deletes
    them through the admin (they are written by services only)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
