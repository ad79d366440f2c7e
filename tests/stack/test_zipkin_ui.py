"""The native trace UI in a real browser: Debian's headless Chromium, driven by Playwright, opens
Zipkin's UI, searches the demo's retried calls the way a person would, and reads a trace's retry
annotation and the circuit breaker's transition.

The stack comes from tests/_support with Zipkin (the collector sends it every span through the
collector/otelcol-zipkin.yaml overlay); the demo runs in its own process, configured only by the
OTEL_* variables. Skipped, with the reason, where there is no Java/jar, no Chromium or no Playwright
(scripts/build-stack.sh installs Chromium and fetches the jar; Playwright is in the test extra).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support.procs import wait_until
from _support.stack import Stack, StackOptions
from _support.zipkin import find_zipkin

pytestmark = pytest.mark.e2e

SERVICE = "pixel-llm-zipkin-demo"
# Span events are Zipkin annotations "name|{attributes as JSON}|dropped count".
RETRY_ANNOTATION = re.compile(r'pixel_llm\.retry\|\{[^}]*"pixel_llm\.retry\.attempt":1')
OPENED_ANNOTATION = re.compile(
    r"pixel_llm\.circuit_breaker\.state_change\|\{[^}]*"
    r'"pixel_llm\.circuit_breaker\.from_state":"closed"[^}]*'
    r'"pixel_llm\.circuit_breaker\.to_state":"open"'
)
TIMEOUT_MS = 60_000  # a busy 2-core machine renders slowly


def chromium_path() -> str:
    """Debian's Chromium (apt-get install chromium), or skip saying how to get it."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium to drive (apt-get install chromium chromium-driver; "
                "scripts/build-stack.sh does it where apt-get works)")  # fmt: skip


@pytest.fixture(scope="module")
def zipkin_stack(stack_factory: Callable[..., Stack]) -> Stack:
    """Jaeger, Zipkin and the collector (no Prometheus/Alertmanager: not needed here)."""
    if find_zipkin() is None:
        pytest.skip("no java or Zipkin jar (scripts/build-stack.sh fetches the jar)")
    return stack_factory(
        StackOptions(with_zipkin=True, with_prometheus=False, with_alertmanager=False),
        name="zipkin",
    )


@pytest.fixture(scope="module")
def demo_in_zipkin(zipkin_stack: Stack) -> Stack:
    """The quick demo, exporting over OTLP/HTTP to the stack; its retried calls are in Zipkin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(zipkin_stack.otel_env(SERVICE, protocol="http"))
    done = subprocess.run(
        [sys.executable, "-m", "pixel_llm_otel", "demo", "--quick"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    zipkin = zipkin_stack.zipkin
    assert zipkin is not None
    zipkin.wait_for_traces(SERVICE, annotation_query="http.request.resend_count")

    def opened_trace_arrived() -> bool:  # the outage's spans come last; wait before the UI looks
        traces = zipkin.traces(SERVICE, annotation_query="pixel_llm.outcome=fallback")
        values = [a["value"] for t in traces for sp in t for a in sp.get("annotations", [])]
        return any(OPENED_ANNOTATION.search(v) for v in values)

    wait_until(opened_trace_arrived, timeout=60, what="the breaker transition in Zipkin")
    return zipkin_stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright (no browser download)."""
    executable = chromium_path()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


def span_details(page: Any) -> str:
    """Click every span row of the open trace and collect the detail panel's text."""
    rows = page.get_by_text(f"{SERVICE}: ", exact=False)
    texts = []
    for i in range(rows.count()):
        rows.nth(i).click()
        texts.append(page.inner_text("body"))
    return "\n".join(texts)


def search(page: Any, zipkin_url: str, tag_query: str) -> list[str]:
    """Zipkin's search page with the service and a tag query filled in, then *Run query*: the
    result rows' trace links."""
    page.goto(
        f"{zipkin_url}/zipkin/?serviceName={SERVICE}&annotationQuery={tag_query}"
        "&lookback=3600000&limit=50"
    )
    page.get_by_role("button", name="Run query").click()
    links = page.locator("a[href*='/zipkin/traces/']")
    links.first.wait_for()
    return [str(links.nth(i).get_attribute("href")) for i in range(links.count())]


def first_trace_showing(
    page: Any, zipkin_url: str, hrefs: list[str], pattern: re.Pattern[str]
) -> str | None:
    """Open the traces one by one; the details text of the first whose spans show `pattern`."""
    for href in hrefs:
        page.goto(f"{zipkin_url}{href}")
        page.get_by_text("Total Spans").wait_for()
        details = span_details(page)
        if pattern.search(details):
            return details
    return None


def test_zipkin_ui_shows_a_retried_call_and_the_breaker_transition(
    demo_in_zipkin: Stack, browser: Any
) -> None:
    """In Zipkin's UI: the tag query `http.request.resend_count` lists the demo's retried calls,
    whose trace shows the pixel_llm.retry annotation; `pixel_llm.outcome=fallback` lists the
    calls the cache answered, one of which shows the breaker's closed -> open transition."""
    zipkin = demo_in_zipkin.zipkin
    assert zipkin is not None
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    retried = search(page, zipkin.url, "http.request.resend_count")
    assert retried, "the search found no retried call"
    shown = first_trace_showing(page, zipkin.url, retried, RETRY_ANNOTATION)
    assert shown is not None, f"none of {len(retried)} retried calls shows a retry annotation"
    degraded = search(page, zipkin.url, "pixel_llm.outcome=fallback")
    opened = first_trace_showing(page, zipkin.url, degraded, OPENED_ANNOTATION)
    assert opened is not None, f"none of {len(degraded)} fallback calls shows closed -> open"
