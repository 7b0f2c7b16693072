"""Per-mini-app metrics at the BFF: the load time the shell reports, and the calls a
mini-app's backend makes (and how many fail), labelled by the mini-app's client id.

The client id label is bounded twice. It is only ever set from a mini-app that exists:
a load time is recorded after miniapps has confirmed the mini-app is published and
active, a call after identity has authenticated the client (at the token endpoint) or
vouched for its token (the mini-app API, `bff.mini_app_callers`). And `BoundedLabels`
caps the distinct ids one process keeps (`BFF_MINI_APP_METRIC_LABELS`); later ones read
`other`, so sums over all mini-apps stay exact however large the registry grows.
"""

from __future__ import annotations

from services.runtime.bounded_labels import BoundedLabels
from services.runtime.metrics import Metrics

__all__ = ["LOAD_TIME_BUCKETS", "MiniAppMetrics"]

LOAD_TIME_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 30.0)
"""Seconds, from tap to first usable screen: fine around the 3 s the alert watches."""


class MiniAppMetrics:
    """`superapp_mini_app_load_time_seconds{client_id}`,
    `superapp_mini_app_calls_total{client_id, route}` and
    `superapp_mini_app_errors_total{client_id, route, error}` in one process's registry."""

    def __init__(self, metrics: Metrics, *, client_labels: int) -> None:
        self._load_time = metrics.histogram(
            "superapp_mini_app_load_time_seconds",
            "Time the shell took to open a published mini-app (bundle fetched, checked "
            "and its entry page usable), as the shell reports it, by client id.",
            ["client_id"],
            buckets=LOAD_TIME_BUCKETS,
        )
        self._calls = metrics.counter(
            "superapp_mini_app_calls_total",
            "Calls a mini-app's backend made to the BFF, by client id and route template.",
            ["client_id", "route"],
        )
        self._errors = metrics.counter(
            "superapp_mini_app_errors_total",
            "Calls of a mini-app's backend the BFF refused, by client id, route template "
            "and error (the OAuth error name or the problem's reason).",
            ["client_id", "route", "error"],
        )
        self._clients = BoundedLabels(client_labels)

    def loaded(self, client_id: str, seconds: float) -> None:
        """The shell opened the (published, active) mini-app `client_id` in `seconds`."""
        self._load_time.labels(self._clients(client_id)).observe(seconds)

    def called(self, client_id: str, route: str, error: str | None = None) -> None:
        """The authenticated mini-app `client_id` called `route`; `error` if refused."""
        label = self._clients(client_id)
        self._calls.labels(label, route).inc()
        if error is not None:
            self._errors.labels(label, route, error).inc()
