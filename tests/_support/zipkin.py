"""Zipkin for tests: the server jar (scripts/build-stack.sh fetches it) on a free loopback port,
and a client for its v2 API.

Zipkin is the native stack's trace UI; the collector sends it every span through the
collector/otelcol-zipkin.yaml overlay. It is a JVM and starts in ~20 s on a quiet machine.

No pixel_llm_otel and no pytest here.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

from .procs import REPO, STACK_BIN, BinaryMissing, ManagedProcess, free_ports, http_json, wait_until

ZIPKIN_OVERLAY = REPO / "collector" / "otelcol-zipkin.yaml"
#: Flags that make the JVM start faster and smaller on a shared machine.
JAVA_OPTIONS = ("-Xms64m", "-Xmx384m", "-XX:TieredStopAtLevel=1")


def find_zipkin() -> tuple[Path, Path] | None:
    """(java, zipkin.jar): $PIXEL_LLM_OTEL_ZIPKIN_JAR or .stack/bin/zipkin.jar, java on PATH."""
    java = shutil.which("java")
    jar = Path(os.environ.get("PIXEL_LLM_OTEL_ZIPKIN_JAR") or STACK_BIN / "zipkin.jar")
    if java is None or not jar.is_file():
        return None
    return Path(java), jar


def require_zipkin() -> tuple[Path, Path]:
    """Like find_zipkin, but raise BinaryMissing with the fix in the message."""
    found = find_zipkin()
    if found is None:
        raise BinaryMissing(
            "zipkin needs java on PATH and the server jar ($PIXEL_LLM_OTEL_ZIPKIN_JAR or "
            f"{STACK_BIN / 'zipkin.jar'}); run `make stack-build` (scripts/build-stack.sh)"
        )
    return found


class ZipkinAPI:
    """Zipkin's v2 API (/zipkin/api/v2/...): services, trace search, one trace."""

    url: str

    def services(self) -> list[str]:
        return list(http_json(f"{self.url}/zipkin/api/v2/services"))

    def traces(
        self,
        service: str,
        *,
        annotation_query: str | None = None,
        span_name: str | None = None,
        limit: int = 100,
        lookback_ms: int = 3_600_000,
    ) -> list[list[dict[str, Any]]]:
        """Traces (each a list of spans) of `service`; `annotation_query` as in the UI's search
        ("pixel_llm.outcome=error", "error", ...)."""
        query = {"serviceName": service.lower(), "limit": str(limit), "lookback": str(lookback_ms)}
        if annotation_query:
            query["annotationQuery"] = annotation_query
        if span_name:
            query["spanName"] = span_name.lower()
        url = f"{self.url}/zipkin/api/v2/traces?{urllib.parse.urlencode(query)}"
        return list(http_json(url))

    def wait_for_traces(
        self, service: str, *, timeout: float = 30.0, **search: Any
    ) -> list[list[dict[str, Any]]]:
        """Poll `traces` until it finds at least one."""
        return wait_until(
            lambda: self.traces(service, **search) or None,
            timeout=timeout,
            what=f"traces of {service} in Zipkin ({search})",
        )


class Zipkin(ManagedProcess, ZipkinAPI):
    """zipkin-server (in-memory storage) on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_ports(1)[0]
        java, jar = require_zipkin()
        super().__init__(
            name="zipkin",
            argv=[
                str(java),
                *JAVA_OPTIONS,
                "-jar",
                str(jar),
                # Armeria's port list replaces the default one: port, loopback address, protocol
                f"--armeria.ports[0].port={self.port}",
                "--armeria.ports[0].ip=127.0.0.1",
                "--armeria.ports[0].protocols[0]=http",
            ],
            log_path=workdir / "zipkin.log",
            ready_url=f"http://127.0.0.1:{self.port}/health",
            env={"STORAGE_TYPE": "mem", "MEM_MAX_SPANS": "200000"},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def spans_endpoint(self) -> str:
        """Where the collector's zipkin exporter sends spans."""
        return f"{self.url}/api/v2/spans"
