"""Helpers of the end-to-end suite: the host app in its own process, Jaeger trace trees, and the
OpenTelemetry globals an in-process configure() needs reset. No fixtures here (see conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from _support.procs import StackError, wait_until

APP = Path(__file__).resolve().with_name("e2e_app.py")
MODEL = "e2e-model"
CHAT = f"chat {MODEL}"


def unique(prefix: str) -> str:
    """`prefix` plus a short random suffix: a service name or marker no other run shares."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any OTEL_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra)
    return env


# --- the host app in its own process ------------------------------------------------------------


class AppProcess:
    """tests/e2e/e2e_app.py in a subprocess; its JSON lines are collected by a reader thread."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        zero_code: bool = False,
    ) -> None:
        self.name = name
        python = sys.executable
        prefix = [str(Path(python).with_name("opentelemetry-instrument"))] if zero_code else []
        self.argv = [*prefix, python, str(APP), *args]
        self.env = clean_env(env)
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> AppProcess:
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        with self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=self.env,
                text=True,
                start_new_session=True,
            )
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"app-{self.name}")
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                with self._lock:
                    self.records.append(record)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.records if r.get("event") == "call"]

    def done(self) -> dict[str, Any] | None:
        with self._lock:
            return next((r for r in self.records if r.get("event") == "done"), None)

    def wait_for(self, probe: Callable[[], Any], *, timeout: float, what: str) -> Any:
        """Poll `probe` (see wait_until); fail at once, with the app's stderr, if the app died
        before the probe was satisfied."""

        def guarded() -> Any:
            result = probe()
            if (result is None or result is False) and not self.running and self.done() is None:
                raise AssertionError(f"app {self.name} exited early\n{self.describe()}")
            return result

        try:
            return wait_until(guarded, timeout=timeout, interval=0.1, what=what)
        except StackError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from exc

    def wait_calls(self, count: int, *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until at least `count` calls were reported; returns all reported so far."""

        def enough() -> list[dict[str, Any]] | None:
            calls = self.calls()
            return calls if len(calls) >= count else None

        return self.wait_for(
            enough,
            timeout=timeout,
            what=f"{count} calls of app {self.name}",
        )

    def finish(self, timeout: float = 60.0) -> dict[str, Any]:
        """Close stdin (the loop mode stops), wait for the exit, return the `done` record."""
        assert self.process is not None
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise AssertionError(f"app {self.name} did not exit\n{self.describe()}") from exc
        if self._reader is not None:
            self._reader.join(5)
        done = self.done()
        assert code == 0, f"app {self.name} exit {code}\n{self.describe()}"
        assert done is not None, f"app {self.name} printed no done line\n{self.describe()}"
        return done

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def describe(self, lines: int = 40) -> str:
        try:
            tail = self.stderr_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            tail = ["(no stderr)"]
        return f"--- app {self.name} stderr ({self.stderr_path}) ---\n" + "\n".join(tail)


def app_args(
    url: str,
    *,
    prompt: str | None = None,
    api_key: str | None = None,
    calls: int | None = None,
    loop: bool = False,
    pace: float = 0.0,
    no_fallback: bool = False,
    configure: bool = True,
    breaker_name: str = "e2e-app",
) -> list[str]:
    """Command-line arguments of e2e_app.py."""
    args = ["--url", url, "--model", MODEL, "--breaker-name", breaker_name]
    if prompt is not None:
        args += ["--prompt", prompt]
    if api_key is not None:
        args += ["--api-key", api_key]
    if calls is not None:
        args += ["--calls", str(calls)]
    if loop:
        args += ["--until-stdin-closes"]
    if pace:
        args += ["--pace", str(pace)]
    if no_fallback:
        args += ["--no-fallback"]
    if configure:
        args += ["--configure"]
    return args


# --- Jaeger traces (Jaeger JSON of /api/traces/{id}) ---------------------------------------------


def tags(item: Mapping[str, Any]) -> dict[str, Any]:
    """A span's (or process's) tags as a dict."""
    return {t["key"]: t["value"] for t in item.get("tags", [])}


def span_events(span: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A span's events (Jaeger logs) in time order: (name, attributes)."""
    events = []
    for log in sorted(span.get("logs", []), key=lambda log: log["timestamp"]):
        fields = {f["key"]: f["value"] for f in log["fields"]}
        events.append((str(fields.pop("event", "")), fields))
    return events


def _parent_id(span: Mapping[str, Any]) -> str | None:
    return next(
        (r["spanID"] for r in span.get("references", []) if r["refType"] == "CHILD_OF"), None
    )


def children(trace: Mapping[str, Any], span: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The child spans of `span`, by start time."""
    found = [s for s in trace["spans"] if _parent_id(s) == span["spanID"]]
    return sorted(found, key=lambda s: s["startTime"])


def root(trace: Mapping[str, Any]) -> dict[str, Any]:
    """The one span without a parent."""
    (found,) = [s for s in trace["spans"] if _parent_id(s) is None]
    return found


def tree(trace: Mapping[str, Any], span: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
    """(name, *child trees) from `span` (default: the root), children by start time."""
    span = span if span is not None else root(trace)
    return (span["operationName"], *(tree(trace, c) for c in children(trace, span)))


def spans_named(trace: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """Spans called `name`, by start time."""
    found = [s for s in trace["spans"] if s["operationName"] == name]
    return sorted(found, key=lambda s: s["startTime"])


def iter_strings(node: Any) -> Iterator[str]:
    """Every string (keys included) anywhere in a JSON value."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from iter_strings(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from iter_strings(item)


def contains(node: Any, needle: str) -> bool:
    """Whether `needle` occurs in any string of a JSON value."""
    return any(needle in s for s in iter_strings(node))
