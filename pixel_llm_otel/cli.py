"""The ``pixel-llm-otel`` command (also ``python -m pixel_llm_otel``).

Subcommands:
    simulate   run the OpenAI-compatible fault simulator until Ctrl-C / SIGTERM; the first line
               on stdout is the base URL (``http://127.0.0.1:PORT/v1``), so ``--port 0`` works.
    demo       the scripted resilience story; everything after ``demo`` is handed to
               ``pixel_llm_otel.demo.main(argv)``, which owns its own options.
    stack      ``stack write DIR``: the bundled collector configs, alert rules, dashboards and
               compose file, written to DIR; ``stack env``: the ``OTEL_*`` lines for a stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._version import __version__

if TYPE_CHECKING:
    from .sim import FaultSpec, SimulatorServer

__all__ = ["build_parser", "main"]

logger = logging.getLogger("pixel_llm_otel.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixel-llm-otel",
        description="A resilient, observable image-to-text pipeline: tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    # `demo` is dispatched before parsing (see main); listed here for --help.
    sub.add_parser(
        "demo",
        help="run the scripted resilience demo (options: pixel-llm-otel demo --help)",
        add_help=False,
    )

    from .sim.scenarios import SCENARIOS

    sim = sub.add_parser(
        "simulate",
        help="run the OpenAI-compatible fault simulator (LM Studio look-alike)",
        description="Serve /v1/models and /v1/chat/completions with injected faults; "
        "control it at runtime through /admin (see pixel_llm_otel.sim.admin).",
    )
    sim.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=1234, help="port; 0 picks a free one")
    sim.add_argument("--scenario", default="healthy", choices=sorted(SCENARIOS))
    sim.add_argument("--seed", type=int, default=None, help="seed for fault draws")
    sim.add_argument(
        "--latency",
        type=float,
        default=None,
        metavar="SECONDS",
        help="fixed latency added before every chat answer, replacing the scenario's",
    )
    sim.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' on /v1")
    sim.add_argument(
        "--admin-port",
        type=int,
        default=None,
        help="also serve /admin on this port (stays up during an outage)",
    )
    sim.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sim.set_defaults(handler=_simulate)
    _add_stack_parser(sub)
    return parser


def _add_stack_parser(sub: Any) -> None:
    stack = sub.add_parser(
        "stack",
        help="the observability stack's files and settings (no clone needed)",
        description="Write the bundled stack files, or print the OTEL_* lines for a stack.",
    )
    actions = stack.add_subparsers(dest="stack_command", metavar="ACTION")
    actions.required = True
    write = actions.add_parser(
        "write",
        help="write collector/ (configs, rules, compose file) and dashboards/ into DIR",
        description="Write the collector configs, Prometheus and Alertmanager configs, alert "
        "rules, Grafana dashboards and docker-compose.yaml into DIR, as in the repository "
        "(then: docker compose -f DIR/collector/docker-compose.yaml up -d).",
    )
    write.add_argument("directory", type=Path, metavar="DIR")
    write.add_argument("--force", action="store_true", help="overwrite files that differ")
    write.set_defaults(handler=_stack_write)
    env = actions.add_parser(
        "env",
        help="print the OTEL_* lines that point an application at a stack's collector",
        description="Print `export OTEL_...` lines for a collector: OTLP over HTTP/protobuf "
        "(the package's default) to port 4318, or gRPC to 4317.",
    )
    env.add_argument("--host", default="127.0.0.1", help="collector host (default 127.0.0.1)")
    env.add_argument(
        "--protocol",
        default="http/protobuf",
        choices=["http/protobuf", "grpc"],
        help="OTLP protocol (default http/protobuf)",
    )
    env.add_argument("--port", type=int, default=None, help="default: 4318 (HTTP), 4317 (gRPC)")
    env.add_argument("--service-name", default=None, help="also set OTEL_SERVICE_NAME")
    env.set_defaults(handler=_stack_env)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "demo":
        return _demo(args_list[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    handler = cast(Callable[[argparse.Namespace], int], args.handler)
    return handler(args)


def _demo(argv: list[str]) -> int:
    """Hand ``argv`` to ``pixel_llm_otel.demo.main`` (imported only now: it is heavy)."""
    try:
        demo = importlib.import_module("pixel_llm_otel.demo")
    except ModuleNotFoundError as exc:
        if exc.name != "pixel_llm_otel.demo":
            raise
        demo = None
    run: Callable[[list[str]], Any] | None = getattr(demo, "main", None)
    if run is None:
        print(
            "pixel-llm-otel: the demo is not available in this build "
            "(pixel_llm_otel.demo.main is missing)",
            file=sys.stderr,
        )
        return 2
    return int(run(argv) or 0)


def _stack_write(args: argparse.Namespace) -> int:
    from ._stack_bundle import BundleConflict, write_bundle

    try:
        done = write_bundle(args.directory, force=args.force)
    except BundleConflict as exc:
        print(f"pixel-llm-otel stack write: {exc} (--force overwrites them)", file=sys.stderr)
        return 1
    except (FileNotFoundError, OSError) as exc:
        print(f"pixel-llm-otel stack write: {exc}", file=sys.stderr)
        return 1
    for path in done.written:
        print(path)
    print(
        f"{len(done.written)} files written, {len(done.unchanged)} unchanged, under "
        f"{args.directory}. Docker: docker compose -f "
        f"{args.directory / 'collector' / 'docker-compose.yaml'} up -d",
        file=sys.stderr,
    )
    return 0


def _stack_env(args: argparse.Namespace) -> int:
    from ._stack_bundle import otel_env_lines

    for line in otel_env_lines(
        host=args.host, protocol=args.protocol, port=args.port, service_name=args.service_name
    ):
        print(line)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from .errors import ValidationError
    from .sim import SimulatorServer

    try:
        scenario: str | FaultSpec = args.scenario
        if args.latency is not None:
            scenario = _with_latency(args.scenario, args.latency)
        server = SimulatorServer(
            host=args.host,
            port=args.port,
            scenario=scenario,
            seed=args.seed,
            api_key=args.api_key,
            admin_port=args.admin_port,
        )
    except ValidationError as exc:
        print(f"pixel-llm-otel simulate: {exc.message}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_serve(server))
    except OSError as exc:
        print(f"pixel-llm-otel simulate: cannot listen: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - the signal handlers normally stop it
        pass
    return 0


def _with_latency(scenario: str, seconds: float) -> FaultSpec:
    """The named scenario with a fixed added latency (``ValidationError`` when negative)."""
    from .sim.faults import Latency
    from .sim.scenarios import resolve

    return dataclasses.replace(
        resolve(scenario), latency=Latency.from_value(seconds, field_name="--latency")
    )


async def _serve(server: SimulatorServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # e.g. Windows
            loop.add_signal_handler(sig, stop.set)
    async with server:
        print(server.base_url, flush=True)
        print(
            f"scenario {server.spec.name}; admin at {server.admin_url}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    logger.info("simulator stopped")
