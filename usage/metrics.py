"""The sync's families on /metrics (registered with portal.metrics in usage.apps).

Aggregates over all licenses, read with a constant number of queries per scrape
(usage.selectors.sync_figures): the same handful of series at ten licenses or a hundred
thousand. Which license is failing or lagging is in the admin (Sync states, filtered) and
in the sync's log lines.
"""

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from usage.selectors import SYNC_LAG_BUCKETS, sync_figures


class SyncCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        figures = sync_figures()
        yield GaugeMetricFamily(
            "portal_sync_licenses",
            "Active licenses: the ones the scheduled sync covers.",
            value=figures.licenses,
        )
        yield GaugeMetricFamily(
            "portal_sync_licenses_failing",
            "Active licenses whose last sync run failed (SyncState.is_failing).",
            value=figures.failing,
        )
        yield GaugeMetricFamily(
            "portal_sync_licenses_lagging",
            "Active licenses whose usage is older than USAGE_STALE_AFTER_SECONDS, or never synced.",
            value=figures.lagging,
        )
        yield GaugeMetricFamily(
            "portal_sync_licenses_never_synced",
            "Active licenses without a complete sync yet.",
            value=figures.never_synced,
        )
        yield HistogramMetricFamily(
            "portal_sync_lag_seconds",
            "How old each active license's usage is (seconds since it was last known current), "
            "over the licenses synced at least once.",
            buckets=[
                *((str(b), n) for b, n in zip(SYNC_LAG_BUCKETS, figures.lag_buckets, strict=True)),
                ("+Inf", figures.licenses - figures.never_synced),
            ],
            sum_value=figures.lag_sum_seconds,
        )
        yield GaugeMetricFamily(
            "portal_sync_lag_max_seconds",
            "The largest lag of an active license synced at least once (0: none).",
            value=figures.lag_max_seconds,
        )
        yield GaugeMetricFamily(
            "portal_sync_licenses_owed",
            "Active licenses the upstream's feed named whose sync has not completed since.",
            value=figures.owed,
        )
        yield GaugeMetricFamily(
            "portal_sync_feed_failing",
            "1 while the last read of the upstream's feed failed (the beat polls every license).",
            value=int(figures.feed_failing),
        )
        if figures.feed_confirmed_age_seconds is not None:
            yield GaugeMetricFamily(
                "portal_sync_feed_confirmed_age_seconds",
                "Seconds since a read of the upstream's feed last reached its end.",
                value=figures.feed_confirmed_age_seconds,
            )
        yield CounterMetricFamily(
            "portal_sync_records_charged",
            "Upstream records charged, all licenses.",
            value=figures.records_charged,
        )
        yield CounterMetricFamily(
            "portal_sync_records_duplicate",
            "Upstream records skipped as already charged, all licenses.",
            value=figures.records_duplicate,
        )
        yield CounterMetricFamily(
            "portal_sync_records_quarantined",
            "Upstream records quarantined, all licenses.",
            value=figures.records_quarantined,
        )
