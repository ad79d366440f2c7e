"""Run real programs as background processes for tests: free ports, logs, readiness, clean stop.

Nothing here knows pixel_llm_otel or pytest; `tests/_support/stack.py` builds the observability
stack on top of it and `tests/_support/stack_fixtures.py` turns that into fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

REPO = Path(__file__).resolve().parents[2]
STACK_BIN = REPO / ".stack" / "bin"

T = TypeVar("T")


class StackError(RuntimeError):
    """A stack process failed to start, died, or did not become ready in time."""


class BinaryMissing(StackError):
    """A program of the stack is not installed (run `make stack-build`)."""


# --- binaries ---------------------------------------------------------------------------------

# name -> (environment variable that overrides it, other names on PATH)
_BINARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "otelcol": ("PIXEL_LLM_OTEL_OTELCOL", ("otelcol-pixel-llm",)),
    "jaeger": ("PIXEL_LLM_OTEL_JAEGER", ()),
    "prometheus": ("PIXEL_LLM_OTEL_PROMETHEUS", ()),
    "promtool": ("PIXEL_LLM_OTEL_PROMTOOL", ()),
    "alertmanager": ("PIXEL_LLM_OTEL_ALERTMANAGER", ("prometheus-alertmanager",)),
    "amtool": ("PIXEL_LLM_OTEL_AMTOOL", ()),
}


def find_binary(name: str) -> Path | None:
    """Path of program `name`: $PIXEL_LLM_OTEL_<NAME>, .stack/bin/ (build-stack.sh), PATH."""
    env_var, aliases = _BINARIES.get(name, (f"PIXEL_LLM_OTEL_{name.upper()}", ()))
    candidates: list[Path] = []
    if os.environ.get(env_var):
        candidates.append(Path(os.environ[env_var]))
    candidates.append(STACK_BIN / name)
    for exe in (name, *aliases):
        found = shutil.which(exe)
        if found:
            candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def require_binary(name: str) -> Path:
    """Like find_binary, but raise BinaryMissing with the fix in the message."""
    path = find_binary(name)
    if path is None:
        env_var = _BINARIES.get(name, (f"PIXEL_LLM_OTEL_{name.upper()}", ()))[0]
        raise BinaryMissing(
            f"{name} not found (not in ${env_var}, {STACK_BIN}, or PATH); "
            "run `make stack-build` (scripts/build-stack.sh) to build or install it"
        )
    return path


# --- ports ------------------------------------------------------------------------------------

_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free TCP ports on `host`, never one this process handed out before."""
    ports: list[int] = []
    held: list[socket.socket] = []
    with _ports_lock:
        try:
            while len(ports) < count:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((host, 0))
                held.append(sock)  # keep it bound so the next bind gets another port
                port = sock.getsockname()[1]
                if port not in _handed_out:
                    ports.append(port)
                    _handed_out.add(port)
        finally:
            for sock in held:
                sock.close()
    return ports


def free_port(host: str = "127.0.0.1") -> int:
    """One free TCP port on `host`."""
    return free_ports(1, host)[0]


# --- HTTP -------------------------------------------------------------------------------------


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET `url`: (status, body); HTTP errors are returned, connection errors raised (OSError)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_json(url: str, *, timeout: float = 10.0) -> Any:
    """GET `url` and decode JSON; raise StackError on a non-2xx status."""
    status, body = http_get(url, timeout=timeout)
    if not 200 <= status < 300:
        raise StackError(f"GET {url} -> {status}: {body[:500]!r}")
    return json.loads(body)


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Call `probe` until it returns something other than None/False; StackError on timeout."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result is not None and result is not False:
                return result
        except (OSError, StackError, ValueError, KeyError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


# --- processes --------------------------------------------------------------------------------


@dataclass
class ManagedProcess:
    """One program run in the background with its output in a log file.

    `ready_url` is polled until it answers 200 (or `ready_check(status, body)` says so).
    """

    name: str
    argv: Sequence[str]
    log_path: Path
    ready_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready_check: Callable[[int, bytes], bool] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> ManagedProcess:
        """Start the program (appending to its log); does not wait for readiness."""
        if self.running:
            raise StackError(f"{self.name} is already running (pid {self.process.pid})")  # type: ignore[union-attr]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,  # a test's Ctrl-C does not reach it; we stop it ourselves
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def wait_ready(self, timeout: float = 60.0) -> ManagedProcess:
        """Poll the readiness URL; StackError (with the log's tail) if it dies or times out."""
        if self.ready_url is None:
            return self
        check = self.ready_check or (lambda status, _body: status == 200)
        deadline = time.monotonic() + timeout
        last: str = "no answer yet"
        while True:
            if not self.running:
                code = self.process.returncode if self.process is not None else None
                raise StackError(
                    f"{self.name} exited (code {code}) before it was ready\n{self.describe()}"
                )
            try:
                status, body = http_get(self.ready_url, timeout=2.0)
                if check(status, body):
                    return self
                last = f"{status}: {body[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{self.name} not ready after {timeout:.0f}s at {self.ready_url} "
                    f"(last: {last})\n{self.describe()}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code (None if never started)."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL at once (a crash, as far as its clients can tell)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def restart(self, timeout: float = 60.0) -> ManagedProcess:
        """Stop (if running), start again with the same argv and ports, wait until ready."""
        self.stop()
        self.process = None
        return self.start().wait_ready(timeout)

    def log_tail(self, lines: int = 60, width: int = 400) -> str:
        """The last `lines` lines of the log, each cut to `width` characters."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        tail = text.splitlines()[-lines:]
        return "\n".join(line if len(line) <= width else line[:width] + " ..." for line in tail)

    def describe(self, lines: int = 60) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"--- {self.name} ({state}, pid {self.pid}, log {self.log_path}) ---\n"
            f"{self.log_tail(lines)}"
        )


def stop_all(processes: Iterable[ManagedProcess]) -> None:
    """Stop processes in the given order, ignoring individual failures."""
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.stop()


class _GroupOptions(Protocol):
    @property
    def ready_timeout(self) -> float: ...


G = TypeVar("G", bound="ProcessGroup")


class ProcessGroup:
    """Processes started together (all launched, then each awaited ready) and stopped in reverse.

    Subclasses (the stack, the fleet) set :attr:`options` and list :attr:`processes` in start
    order; a start that fails stops whatever it had started.
    """

    options: _GroupOptions

    @property
    def processes(self) -> list[ManagedProcess]:
        """In start order."""
        raise NotImplementedError

    def ready_timeout(self, proc: ManagedProcess) -> float:
        """Seconds ``proc`` may take to answer ready (overridable per process)."""
        return self.options.ready_timeout

    def start(self: G) -> G:
        try:
            for proc in self.processes:
                proc.start()
            for proc in self.processes:
                proc.wait_ready(self.ready_timeout(proc))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_all(reversed(self.processes))

    def __enter__(self: G) -> G:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self, lines: int = 40) -> str:
        """Every process's state and log tail (for failure reports)."""
        return "\n".join(p.describe(lines) for p in self.processes)
