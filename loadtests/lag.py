"""The counting lag from the tally's own histogram (``urne_tally_lag_seconds``): from a
ballot's recording by the vote service to the tally counting it, read from the
Prometheus endpoints of the processes that count (the tally workers; embedded, the one
process) before and after a run."""

from __future__ import annotations

import math

import httpx
from prometheus_client.parser import text_string_to_metric_families

METRIC = "urne_tally_lag_seconds"


def buckets(metrics_urls: list[str]) -> dict[float, float]:
    """Cumulative count per upper bound (``le``) of the lag histogram, as served now,
    summed over the processes that count (every tally worker)."""
    found: dict[float, float] = {}
    for url in metrics_urls:
        try:
            text = httpx.get(url, timeout=30).text
        except httpx.HTTPError:  # a worker stopped since: its counts went with it
            continue
        for family in text_string_to_metric_families(text):
            if family.name != METRIC:
                continue
            for sample in family.samples:
                if sample.name == f"{METRIC}_bucket":
                    le = float(sample.labels["le"])
                    found[le] = found.get(le, 0.0) + sample.value
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
