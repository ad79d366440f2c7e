"""HTTP clients for the stack's APIs (Jaeger query, Prometheus, Alertmanager) and a webhook
receiver for Alertmanager notifications.

The clients only need a base URL, so they serve both the native processes
(tests/_support/stack.py) and the containers of the Docker tests (tests/docker/).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .procs import StackError, free_ports, http_json, wait_until


class JaegerAPI:
    """Jaeger's query API: /api/services, /api/traces (Jaeger JSON), /api/v3/traces (OTLP JSON)."""

    url: str

    def services(self) -> list[str]:
        return list(http_json(f"{self.url}/api/services").get("data") or [])

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """A trace in Jaeger's JSON (/api/traces/{id}: spans, references, logs=events), or None."""
        try:
            data = http_json(f"{self.url}/api/traces/{trace_id}").get("data") or []
        except StackError:
            return None
        return data[0] if data else None

    def trace_otlp(self, trace_id: str) -> dict[str, Any] | None:
        """A trace as OTLP JSON (/api/v3/traces/{id}: resourceSpans), or None."""
        try:
            result = http_json(f"{self.url}/api/v3/traces/{trace_id}").get("result")
        except StackError:
            return None
        return result if result and result.get("resourceSpans") else None

    def find_traces(
        self, service: str, operation: str | None = None, limit: int = 100, lookback: str = "1h"
    ) -> list[dict[str, Any]]:
        """Traces of `service` (/api/traces?service=...)."""
        query = {"service": service, "limit": str(limit), "lookback": lookback}
        if operation:
            query["operation"] = operation
        url = f"{self.url}/api/traces?{urllib.parse.urlencode(query)}"
        return list(http_json(url).get("data") or [])

    def wait_for_trace(
        self, trace_id: str, timeout: float = 30.0, min_spans: int = 1
    ) -> dict[str, Any]:
        """Poll until the trace has at least `min_spans` spans; returns it (Jaeger JSON)."""

        def probe() -> dict[str, Any] | None:
            found = self.trace(trace_id)
            return found if found and len(found.get("spans", [])) >= min_spans else None

        return wait_until(probe, timeout=timeout, what=f"trace {trace_id} in Jaeger")


class PrometheusAPI:
    """Prometheus' HTTP API (/api/v1/...)."""

    url: str

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns `data`, raises StackError unless status is success."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        body = http_json(url)
        if body.get("status") != "success":
            raise StackError(f"{url}: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query: the result vector (list of {metric, value})."""
        return list(self.api("query", query=promql)["result"])

    def query_exemplars(self, promql: str, window_s: float = 3600) -> list[dict[str, Any]]:
        now = time.time()
        return list(
            self.api("query_exemplars", query=promql, start=str(now - window_s), end=str(now))
        )

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll an instant query until it returns a non-empty result."""
        return wait_until(
            lambda: self.query(promql) or None,
            timeout=timeout,
            what=f"Prometheus data for {promql!r}",
        )

    def targets_up(self) -> dict[str, bool]:
        active = self.api("targets")["activeTargets"]
        return {t["labels"]["job"]: t["health"] == "up" for t in active}

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])


class AlertmanagerAPI:
    """Alertmanager's API v2."""

    url: str

    def alerts(self) -> list[dict[str, Any]]:
        return list(http_json(f"{self.url}/api/v2/alerts"))


class JaegerClient(JaegerAPI):
    def __init__(self, url: str) -> None:
        self.url = url


class PrometheusClient(PrometheusAPI):
    def __init__(self, url: str) -> None:
        self.url = url


class AlertmanagerClient(AlertmanagerAPI):
    def __init__(self, url: str) -> None:
        self.url = url


class WebhookReceiver:
    """A tiny HTTP server that records Alertmanager webhook notifications (JSON bodies)."""

    def __init__(self) -> None:
        self.port = free_ports(1)[0]
        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock, contextlib.suppress(ValueError):
                    receiver.notifications.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="alert-webhook"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def alerts(self, status: str | None = None) -> Iterator[dict[str, Any]]:
        """Every alert of every notification so far (optionally only `firing` / `resolved`)."""
        with self._lock:
            notes = list(self.notifications)
        for note in notes:
            for alert in note.get("alerts", []):
                if status is None or alert.get("status") == status:
                    yield alert

    def wait_for_alert(self, alertname: str, timeout: float = 60.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            return next(
                (
                    a
                    for a in self.alerts("firing")
                    if a.get("labels", {}).get("alertname") == alertname
                ),
                None,
            )

        return wait_until(
            probe, timeout=timeout, interval=0.5, what=f"alert {alertname} at the webhook"
        )
