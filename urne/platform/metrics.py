"""Prometheus metrics shared by every process (base units, ``_total`` counters, no voter ids)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

COMMANDS = Counter(
    "urne_commands_total", "Commands and queries handled, by outcome.",
    ["service", "type", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "urne_command_duration_seconds", "Time to handle a command or query.", ["service", "type"],
)
EVENTS_HANDLED = Counter(
    "urne_events_handled_total", "Domain events consumed, by outcome.",
    ["service", "type", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "urne_events_published_total", "Domain events published after commit.", ["service", "type"],
)
MESSAGES_REFUSED = Counter(
    "urne_messages_refused_total",
    "Messages a consumer refused before handling them (unsigned, mis-signed, not allowed), "
    "by reason; each is dead-lettered with its reason.", ["consumer", "reason"],
)
MESSAGES_REPEATED = Counter(
    "urne_messages_repeated_total",
    "Signed messages a consumer admitted whose envelope id it had seen recently (a "
    "redelivery or a replay): handled again with no second effect, counted, no alarm.",
    ["consumer", "type"],
)
ACTION_LOG_FAILURES = Counter(
    "urne_action_log_failures_total",
    "Staff actions carried out whose action-log entry the store refused (logged instead).",
    ["service"],
)
BALLOTS = Counter(
    "urne_ballots_recorded_total", "Ballots stored durably by the vote service.",
    ["channel", "kind"],
)
BALLOT_BATCH_SIZE = Histogram(
    "urne_ballot_batch_size", "Ballots and close markers handled per intake batch.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
SHARDS_ACTIVE = Gauge(
    "urne_vote_worker_active_shards", "Ballot shards this vote worker has consumed from "
    "since it last stepped back from any.",
)
RESULTS = Counter("urne_results_published_total", "Signed results published by the tally.")
TALLY_LAG = Histogram(
    "urne_tally_lag_seconds",
    "From a ballot's recording by the vote service to the tally holding it (the clocks of "
    "two processes: on several hosts, their skew adds in).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
)
POLLS_AWAITING = Gauge("urne_tally_polls_awaiting",
                       "Sealed polls the tally has not published yet, as of its last check.")
RESULTS_WITHHELD = Gauge(
    "urne_tally_results_withheld",
    "Sealed polls whose result the tally will not sign, as of its last check: the merged "
    "shard counts, the recount of its copy and the vote service's seal disagree.")
COUNTING_SHARDS_OWNED = Gauge("urne_tally_worker_shards",
                              "Counting shards this tally worker consumes.")
COUNTING_POSITION = Gauge(
    "urne_tally_worker_checkpoint",
    "The offset a counting shard's checkpoint has reached in its generation's stream (back "
    "near 0 when the streams rotate).", ["shard"])
COUNTING_GENERATIONS = Gauge(
    "urne_counting_generations",
    "Generations of counting streams on the broker, as the tally worker rotating them last "
    "saw (0 in the others): 1, or 2 while the old one is counted past.")
COUNTING_OLDEST_GENERATION = Gauge(
    "urne_counting_oldest_generation_seconds",
    "How long ago the oldest generation of counting streams on the broker opened, as the "
    "tally worker rotating them last saw (0 in the others): about the rotation period at "
    "most; more, and a generation is not counted past or not deleted, or rotation fails.")
SERVICE_READY = Gauge(
    "urne_service_ready",
    "1 if the service answered the gateway's last /readyz through the broker and reached "
    "its store, else 0 (the gateway's readiness probe asks every few seconds).", ["service"],
)
HTTP_REQUESTS = Counter(
    "urne_http_requests_total", "HTTP requests served by the gateway.",
    ["method", "route", "status"],
)
HTTP_PROBLEMS = Counter(
    "urne_http_problems_total",
    "Problem responses (application/problem+json) the gateway gave, by status and stable "
    "code: rejected ballots, refused sign-ins, services away.", ["status", "code"],
)
HTTP_SECONDS = Histogram(
    "urne_http_request_duration_seconds", "Gateway request latency.", ["method", "route"],
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on its own port (services have no HTTP server of their own)."""
    if port:
        start_http_server(port, addr=host)
