"""Fixtures of the end-to-end suite: one observability stack per session (collector with the
debug exporter at `detailed`, Jaeger, Prometheus with the canonical and the short-window e2e
rules, Alertmanager pointed at a webhook this session owns), simulators, host-app processes,
and the in-process chaos run configured only through OTEL_* variables.

Stack fixtures and their CI rule (missing programs fail when CI=true, skip otherwise) come from
tests/_support/stack_fixtures.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
for _path in (str(_TESTS), str(_TESTS / "dashboards")):
    if _path not in sys.path:  # `_support` and `_queries` live there, whatever the import mode
        sys.path.insert(0, _path)

from _support.clients import WebhookReceiver  # noqa: E402
from _support.otel_globals import reset_otel_globals  # noqa: E402
from _support.stack import Stack, StackOptions  # noqa: E402
from _support.stack_fixtures import *  # noqa: E402, F403
from e2e_chaos import ChaosRun, run_chaos  # noqa: E402
from e2e_support import AppProcess, unique  # noqa: E402

from pixel_llm_otel.sim import SimulatorThread, start_in_thread  # noqa: E402

RULE_FILES = ("rules/*.yml", "rules-e2e/*.yml")  # relative to collector/prometheus/


@pytest.fixture(scope="session")
def e2e_webhook() -> Iterator[WebhookReceiver]:
    """The session's Alertmanager webhook receiver (records every notification)."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def e2e_stack(stack_factory: Callable[..., Stack], e2e_webhook: WebhookReceiver) -> Stack:
    """Collector (debug exporter detailed), Jaeger, Prometheus (canonical + e2e rules, 1 s
    intervals), Alertmanager notifying `e2e_webhook`; started once per session."""
    return stack_factory(
        StackOptions(
            collector_env={"OTELCOL_DEBUG_VERBOSITY": "detailed"},
            rule_files=RULE_FILES,
            alert_webhook_url=e2e_webhook.url,
        ),
        name="e2e",
    )


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    """A healthy simulator on a free loopback port, on its own thread."""
    with start_in_thread(seed=3) as server:
        yield server


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    """Start e2e_app.py processes (killed at teardown if still running)."""
    apps: list[AppProcess] = []

    def start(name: str, args: list[str], env: dict[str, str], **options: object) -> AppProcess:
        app = AppProcess(name, args, env, tmp_path, **options)  # type: ignore[arg-type]
        apps.append(app)
        return app.start()

    yield start
    for app in apps:
        app.kill()


@pytest.fixture(scope="module")
def chaos_run(e2e_stack: Stack) -> ChaosRun:
    """The chaos story (e2e_chaos.py) in this process: OTEL_* variables set with monkeypatch,
    then pixel_llm_otel.telemetry.configure() with no arguments; shut down (flushed) before the
    tests look at the backends, and the OpenTelemetry globals reset afterwards."""
    from pixel_llm_otel.telemetry import PixelLLMInstrumentor, configure
    from pixel_llm_otel.telemetry import _configure as configure_module

    if configure_module._active is not None:  # left by an earlier test of the session
        configure_module._active.shutdown()
    if PixelLLMInstrumentor().is_instrumented_by_opentelemetry:
        PixelLLMInstrumentor().uninstrument()
    reset_otel_globals()
    service = unique("e2e-chaos")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("OTEL_"):
                mp.delenv(key)
        for key, value in e2e_stack.otel_env(service).items():
            mp.setenv(key, value)
        handle = configure()
        try:
            assert handle.enabled
            assert handle.owned == ("metrics", "traces", "logs")
            with start_in_thread(seed=5) as server:
                run = run_chaos(
                    server, service, prompt=unique("e2e-secret-prompt"), api_key=unique("sk-e2e")
                )
            assert handle.force_flush(10_000), "telemetry did not flush within 10 s"
        finally:
            handle.shutdown()  # the meter provider's last export has the final counts
            reset_otel_globals()
    return run
