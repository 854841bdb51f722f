"""The server's Prometheus metrics, one `Metrics` per application.

`create_app` builds one and hands it to what it measures: the HTTP middleware
(requests by method, route template and status; latency), the log writer
(leaves appended, by type), the SQLite group commit (blocks per commit), the
event stream (open WebSocket streams, and the fan-out lag: from the moment
this process learns of a commit to the frame sent). Each metric has its own
`CollectorRegistry`, not prometheus-client's global one, so nothing is
registered at import and two applications in one process do not clash.

Labels are bounded: a route is its template (``/v1/rooms/{room_id}/events``),
never the concrete path, and an unmatched path is ``<unmatched>``; a method
outside the standard ones is ``OTHER``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "UNMATCHED", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of the text exposition format."""
UNMATCHED = "<unmatched>"
"""The route label of a request no route matched (a 404 for an unknown path)."""

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Every metric the server exports, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "parley_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "parley_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.requests_in_progress = Gauge(
            "parley_http_requests_in_progress",
            "HTTP requests being answered right now (a scrape counts itself).",
            registry=registry,
        )
        self.events_appended = Counter(
            "parley_log_leaves_appended",
            "Log leaves committed by this process, by type (message, roster, moderation, "
            "act, directory statements...).",
            ["type"],
            registry=registry,
        )
        self.group_commit_size = Histogram(
            "parley_group_commit_size",
            "Write blocks committed together by one SQLite group commit (one fsync).",
            buckets=_GROUP_BUCKETS,
            registry=registry,
        )
        self.websocket_streams = Gauge(
            "parley_websocket_streams",
            "Event streams (WebSocket connections) open in this process.",
            registry=registry,
        )
        self.fanout_lag_seconds = Histogram(
            "parley_fanout_lag_seconds",
            "Time from this process learning of a committed event (its own commit, or "
            "another replica's notification) to the stream frame carrying it being sent.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

        self._per_route: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request and its duration (its labelled children are
        looked up once per label set: this runs on every request)."""
        if method not in _METHODS:
            method = "OTHER"  # the caller chose it: a label must stay bounded
        key = (method, route, status)
        children = self._per_route.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.request_seconds.labels(method, route),
            )
            self._per_route[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def appended(self, leaf_type: str) -> None:
        """Count one committed log leaf of `leaf_type`."""
        self.events_appended.labels(leaf_type).inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
