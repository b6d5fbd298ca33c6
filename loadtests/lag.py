"""The counting lag from the tally's own histogram (``urne_tally_lag_seconds``): from a
ballot's recording by the vote service to the tally holding it, read from its
Prometheus endpoint before and after a run."""

from __future__ import annotations

import math

import httpx
from prometheus_client.parser import text_string_to_metric_families

METRIC = "urne_tally_lag_seconds"


def buckets(metrics_url: str) -> dict[float, float]:
    """Cumulative count per upper bound (``le``) of the lag histogram, as served now."""
    text = httpx.get(metrics_url, timeout=30).text
    found: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            if sample.name == f"{METRIC}_bucket":
                found[float(sample.labels["le"])] = sample.value
    return found


def quantile_bound(before: dict[float, float], after: dict[float, float], q: float
                   ) -> float | None:
    """The upper bound of the bucket that holds the ``q`` quantile of what was observed
    between the two readings (a histogram gives no closer figure); None if nothing was,
    or if it lies beyond the last finite bound."""
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in after}
    total = delta.get(math.inf, 0.0)
    if total <= 0:
        return None
    for le in sorted(delta):
        if delta[le] >= q * total:
            return None if math.isinf(le) else le
    return None
