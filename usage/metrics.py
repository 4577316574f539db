"""The sync's families on /metrics (registered with portal.metrics in usage.apps)."""

from django.utils import timezone

from portal.metrics import metric_line
from usage.selectors import sync_states_for_metrics


def sync_metric_lines() -> list[str]:
    lines: list[str] = []
    now = timezone.now()
    families = {
        "portal_sync_lag_seconds": ("gauge", "Seconds since the license's last successful sync."),
        "portal_sync_records_charged_total": ("counter", "Upstream records charged."),
        "portal_sync_records_duplicate_total": (
            "counter",
            "Upstream records skipped as already charged.",
        ),
        "portal_sync_records_quarantined_total": ("counter", "Upstream records quarantined."),
        "portal_sync_failing": ("gauge", "1 when the license's last sync attempt failed."),
    }
    samples: dict[str, list[str]] = {name: [] for name in families}
    for state in sync_states_for_metrics():
        labels = {"license": state.license.key}
        if state.last_success_at:
            lag = (now - state.last_success_at).total_seconds()
            samples["portal_sync_lag_seconds"].append(
                metric_line("portal_sync_lag_seconds", f"{lag:.0f}", labels)
            )
        samples["portal_sync_records_charged_total"].append(
            metric_line("portal_sync_records_charged_total", state.records_charged, labels)
        )
        samples["portal_sync_records_duplicate_total"].append(
            metric_line("portal_sync_records_duplicate_total", state.records_duplicate, labels)
        )
        samples["portal_sync_records_quarantined_total"].append(
            metric_line("portal_sync_records_quarantined_total", state.records_quarantined, labels)
        )
        failing = state.is_failing
        samples["portal_sync_failing"].append(
            metric_line("portal_sync_failing", int(failing), labels)
        )
    for name, (kind, help_text) in families.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples[name]]
    return lines
