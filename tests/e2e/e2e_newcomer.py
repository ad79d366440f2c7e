"""The newcomer's stack: scripts/stack.sh itself, run on free ports in a temporary state directory.

`NativeStack.start()` runs `scripts/stack.sh start` with every STACK_*_PORT moved to a free port
and STACK_DIR in a temporary directory, so it never meets a developer's own `make stack`; what it
printed is kept, and `printed_env()` turns its `export OTEL_...` lines into the environment a
newcomer would have after pasting them. `documented_jaeger_searches()` collects every Jaeger search
the docs, the dashboards and stack.sh's own output tell a reader to run.

No pytest here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from _support.clients import JaegerClient, PrometheusClient
from _support.procs import REPO, free_ports
from _support.zipkin import ZipkinAPI

STACK_SH = REPO / "scripts" / "stack.sh"
PORT_VARIABLES = (
    "STACK_OTLP_GRPC_PORT",
    "STACK_OTLP_HTTP_PORT",
    "STACK_COLLECTOR_HEALTH_PORT",
    "STACK_COLLECTOR_METRICS_PORT",
    "STACK_COLLECTOR_EXPORTER_PORT",
    "STACK_JAEGER_PORT",
    "STACK_JAEGER_GRPC_PORT",
    "STACK_JAEGER_OTLP_GRPC_PORT",
    "STACK_JAEGER_OTLP_HTTP_PORT",
    "STACK_JAEGER_HEALTH_PORT",
    "STACK_JAEGER_METRICS_PORT",
    "STACK_ZIPKIN_PORT",
    "STACK_PROMETHEUS_PORT",
    "STACK_ALERTMANAGER_PORT",
)
_EXPORT = re.compile(r"^\s*export (OTEL_\w+)=(\S+)\s*$", re.MULTILINE)
_JAEGER_URL = re.compile(r"https?://[\w.:<>-]+/api/traces\?[^`\s)]+")
_DOC_TAGS = re.compile(r"tags? `([\w.]+=[\w.-]+)`")


class ZipkinClient(ZipkinAPI):
    def __init__(self, url: str) -> None:
        self.url = url


@dataclass
class NativeStack:
    """scripts/stack.sh on free ports with its state under `state_dir`."""

    state_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    output: str = ""

    def __post_init__(self) -> None:
        if not self.ports:
            self.ports = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True))

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "STACK_"))}
        env.update({k: str(v) for k, v in self.ports.items()})
        env.update(STACK_DIR=str(self.state_dir), STACK_MODE="native")
        return env

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`scripts/stack.sh ARGS` (stdout and stderr together in .stdout)."""
        return subprocess.run(
            ["bash", str(STACK_SH), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run("start", *args)
        self.output = done.stdout
        return done

    def pid(self, name: str) -> int | None:
        path = self.state_dir / "run" / f"{name}.pid"
        return int(path.read_text()) if path.exists() else None

    def log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def describe(self) -> str:
        tails = []
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            tails.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-20:]))
        return self.output + "\n" + "\n".join(tails)

    def printed_env(self, output: str | None = None) -> dict[str, str]:
        """The `export OTEL_...=...` lines of stack.sh's output, as variables."""
        return dict(_EXPORT.findall(self.output if output is None else output))

    def url(self, variable: str) -> str:
        return f"http://127.0.0.1:{self.ports[variable]}"

    @property
    def jaeger(self) -> JaegerClient:
        return JaegerClient(self.url("STACK_JAEGER_PORT"))

    @property
    def prometheus(self) -> PrometheusClient:
        return PrometheusClient(self.url("STACK_PROMETHEUS_PORT"))

    @property
    def zipkin(self) -> ZipkinClient:
        return ZipkinClient(self.url("STACK_ZIPKIN_PORT"))


# --- documented searches ------------------------------------------------------------------------


@dataclass(frozen=True)
class JaegerSearch:
    """One search a reader is told to run: where it is written, and its query parameters."""

    source: str
    params: tuple[tuple[str, str], ...]

    def url(self, jaeger_url: str, service: str) -> str:
        """The /api/traces URL against `jaeger_url`, placeholders replaced by `service`."""
        params = {k: v for k, v in self.params}
        params["service"] = service
        params.setdefault("lookback", "1h")
        return f"{jaeger_url}/api/traces?{urllib.parse.urlencode(params)}"


def _from_url(source: str, url: str) -> JaegerSearch:
    query = urllib.parse.urlsplit(url.replace("<", "%3C").replace(">", "%3E")).query
    pairs = tuple((k, v) for k, v in urllib.parse.parse_qsl(query) if k != "service")
    json.loads(dict(pairs).get("tags", "{}"))  # a documented tags= must be valid JSON
    return JaegerSearch(source, pairs)


def _from_logfmt(source: str, tags: str, operation: str | None = None) -> JaegerSearch:
    pairs = dict(item.split("=", 1) for item in tags.split())
    params = [("tags", json.dumps(pairs))]
    if operation:
        params.append(("operation", operation))
    return JaegerSearch(source, tuple(params))


def documented_jaeger_searches(stack_output: str) -> list[JaegerSearch]:
    """Every Jaeger search in docs/*.md, README.md, the dashboards' Jaeger panels, and stack.sh's
    printed URLs: `/api/traces?...` URLs and "tags `k=v`" mentions."""
    searches: list[JaegerSearch] = []
    texts = {p.relative_to(REPO).as_posix(): p.read_text() for p in REPO.glob("docs/*.md")}
    texts["README.md"] = (REPO / "README.md").read_text()
    texts["stack.sh output"] = stack_output
    for source, text in texts.items():
        for url in _JAEGER_URL.findall(text):
            searches.append(_from_url(source, url))
        for tags in _DOC_TAGS.findall(text):
            searches.append(_from_logfmt(source, tags))
    for board in sorted(REPO.glob("dashboards/*.json")):
        for panel in json.loads(board.read_text()).get("panels", []):
            for target in panel.get("targets", []):
                if target.get("queryType") == "search" and target.get("tags"):
                    source = f"{board.name}: {panel['title']}"
                    searches.append(_from_logfmt(source, target["tags"], target.get("operation")))
    return searches
