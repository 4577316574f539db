from accounts.models import License
from usage.models import SyncState


def sync_state_get(license: License) -> SyncState:
    return SyncState.objects.for_license(license).first() or SyncState(license=license)


def sync_states_for_metrics():
    return SyncState.objects.select_related("license").order_by("license__key")
