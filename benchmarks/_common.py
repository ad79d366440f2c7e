"""What the benchmarks share: the simulator in its own process, worker processes behind a pipe,
a no-cost encoder and free loopback ports.

Imported by the ``bench_*.py`` scripts as ``_common`` (each puts ``benchmarks/`` on ``sys.path``,
as running ``python benchmarks/bench_x.py`` does).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from typing import Any, TypeVar

MODEL = "sim-model"


class FixedEncoder:
    """The encoder seam at (almost) no cost: the same features for the same image, every call."""

    device = "cpu"

    async def encode_async(self, batch: Any) -> Any:
        return batch

    def summarize(self, features: Any) -> list[str]:
        return ["a 16x16 test pattern"] * int(features.shape[0])


def free_port() -> int:
    """A loopback port that was free a moment ago (bound, then closed: connects are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator(latency: float = 0.0) -> Iterator[str]:
    """``pixel-llm-otel simulate`` (healthy, ``latency`` s added) in its own process; base URL."""
    command = [sys.executable, "-m", "pixel_llm_otel", "simulate", "--port", "0",
               "--scenario", "healthy", "--seed", "1", "--log-level", "WARNING"]  # fmt: skip
    if latency > 0:
        command += ["--latency", str(latency)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the simulator did not start: {url!r}")
        yield url
    finally:
        process.terminate()
        process.wait(10)


W = TypeVar("W")


def serve(
    conn: Connection,
    build: Callable[[], tuple[W, Any]],
    handle: Callable[[W, str, tuple[Any, ...]], tuple[Any, bool]],
    *,
    quiet: bool = True,
) -> None:
    """The worker side of :class:`WorkerProcess`: ``build()`` makes the worker and the value of
    its first message; each ``(command, args)`` after it is answered with the value of
    ``handle(worker, command, args)``, until ``handle`` says that answer was the last.

    ``quiet``: stderr goes to /dev/null (the SDK's export warnings still cost what they cost; the
    benchmark does not read them). A failure is sent back as ``("error", text)``, never left for
    the parent to wait on.
    """
    if quiet:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    try:
        worker, first = build()
        conn.send(("ok", first))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        command, args = conn.recv()
        try:
            value, last = handle(worker, command, args)
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
            continue
        conn.send(("ok", value))
        if last:
            return


class WorkerProcess:
    """A spawned worker process, ``target(*args, conn)``, and the pipe to it.

    The worker answers each ``(command, args)`` it receives with ``(status, value)``; a status of
    ``"error"`` becomes a ``RuntimeError`` here. Its first message (sent once it is set up) is
    read with :meth:`answer`; ``stop`` ends it.
    """

    def __init__(
        self,
        name: str,
        target: Callable[..., None],
        *args: Any,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``env``: variables the spawned interpreter starts with (e.g. ``PYTHONHASHSEED``)."""
        ctx = mp.get_context("spawn")
        self.name = name
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(*args, child), daemon=True)
        saved = {key: os.environ.get(key) for key in env or {}}
        os.environ.update(env or {})
        try:
            self.process.start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        child.close()

    def answer(self) -> Any:
        status, value = self.conn.recv()
        if status == "error":
            raise RuntimeError(f"worker {self.name}: {value}")
        return value

    def call(self, command: str, *args: Any) -> Any:
        self.conn.send((command, args))
        return self.answer()

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(Exception):
                self.call("stop")
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
