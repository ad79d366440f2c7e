"""``pixel-llm-otel demo``: the scripted resilience story, with telemetry you can see.

    pixel-llm-otel demo            # simulator in-process: healthy, transient, outage, recovery
    pixel-llm-otel demo --quick    # a few calls per phase, no pacing (tests, CI)
    pixel-llm-otel demo --url http://localhost:1234/v1 --model qwen2-vl   # a real LM Studio

``run_demo(argv)`` returns the exit status: 0 when every check of the story held, 1 when one
did not, 2 when a real server given with ``--url`` cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console

from .story import DemoOptions, StoryClock, StoryReport, error_config, run_story

if TYPE_CHECKING:
    from ._telemetry import DemoTelemetry, ExportReport

__all__ = ["DemoOptions", "main", "parse_options", "run_demo"]


def parse_options(argv: Sequence[str] | None = None) -> DemoOptions:
    parser = argparse.ArgumentParser(
        prog="pixel-llm-otel demo",
        description="Run the resilience story against the in-process LM Studio simulator.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="4 calls per phase, no pacing (tests, CI)",
    )
    parser.add_argument("--calls", type=int, default=None, help="calls per phase (default 12)")
    parser.add_argument(
        "--pace", type=float, default=None, help="seconds between calls (default 0.12)"
    )
    parser.add_argument(
        "--cooldown",
        type=float,
        default=None,
        help="circuit breaker cooldown in seconds (default 30; the story fast-forwards it)",
    )
    parser.add_argument("--seed", type=int, default=7, help="simulator fault seed")
    parser.add_argument(
        "--url",
        default=None,
        help="a real OpenAI-compatible server (LM Studio) instead of the simulator",
    )
    parser.add_argument(
        "--model", default=None, help="model name (default: sim-model / local-model with --url)"
    )
    parser.add_argument("--device", default="cpu", help="encoder device (auto, cpu, cuda, mps)")
    parser.add_argument(
        "--send-image",
        action="store_true",
        help="also send each image as a base64 PNG (vision models)",
    )
    parser.add_argument(
        "--no-telemetry",
        action="store_true",
        help="do not set up OpenTelemetry (no trace trees, no metrics)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    quick = bool(args.quick)
    calls = args.calls if args.calls is not None else (4 if quick else 12)
    if calls < 4:
        parser.error("--calls must be at least 4 (the outage needs 3 failures and a rejection)")
    return DemoOptions(
        calls=calls,
        pace=args.pace if args.pace is not None else (0.0 if quick else 0.12),
        cooldown=args.cooldown if args.cooldown is not None else 30.0,
        seed=args.seed,
        url=args.url,
        model=args.model or ("local-model" if args.url else "sim-model"),
        device=args.device,
        send_image=bool(args.send_image),
        telemetry=not args.no_telemetry,
        quick=quick,
    )


def run_demo(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    """Run the demo with command-line ``argv`` (without ``demo``); returns the exit status."""
    options = parse_options(argv)
    out = console if console is not None else _console()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_main(options, out))
    # Called from a running loop (Jupyter): run the story on a thread with its own loop.
    status: list[int] = []
    worker = threading.Thread(target=lambda: status.append(asyncio.run(_main(options, out))))
    worker.start()
    worker.join()
    return status[0] if status else 1


main = run_demo


def _console() -> Console:
    """stdout; at least 120 columns when it is not a terminal (logs, CI), so tables fit."""
    console = Console()
    if not console.is_terminal and console.width < 120:
        console = Console(width=120)
    return console


async def _main(options: DemoOptions, console: Console) -> int:
    from ..monitoring import StructuredLogger
    from ..pipeline import HybridPixelLLM
    from ..sim import SimulatorServer
    from . import render

    telemetry = _start_telemetry(options, console)
    logs = io.StringIO()
    logger = StructuredLogger("pixel_llm_otel.demo", level="INFO", stream=logs)
    sim = None
    try:
        if options.url is None:
            sim = await SimulatorServer(port=0, seed=options.seed).start()
        url = options.url or (sim.base_url if sim is not None else "")
        render.print_intro(console, url, simulated=sim is not None)
        clock = StoryClock()
        async with HybridPixelLLM(
            url,
            options.model,
            device=options.device,
            error_config=error_config(options),
            connect_timeout=1.0,
            read_timeout=0.5 if sim is not None else 60.0,
            total_timeout=2.0 if sim is not None else 120.0,
            send_image=options.send_image,
            logger=logger,
            clock=clock,
        ) as llm:
            if sim is None and not await llm.check_lm_studio_available_async():
                health = await llm.health_async()
                console.print(f"[red]Cannot reach {url}[/]: {health['error']}")
                return 2
            phases = 2 if sim is None else 5
            with render.progress_bar(console, phases * options.calls) as progress:
                report = await run_story(llm, sim, options, progress, clock)
        logger.flush()
        report.logs = logs.getvalue()
        export = _finish_export(telemetry, report)
        _print_results(console, report, telemetry, export)
        return 0 if report.ok else 1
    finally:
        logger.close()
        if sim is not None:
            await sim.stop()
        if telemetry is not None:
            telemetry.shutdown()


def _start_telemetry(options: DemoOptions, console: Console) -> DemoTelemetry | None:
    if not options.telemetry:
        return None
    try:
        from ._telemetry import DemoTelemetry

        return DemoTelemetry.start()
    except ImportError as exc:  # the [otel] extra is not installed
        console.print(
            f"[yellow]telemetry off[/]: {exc.name} is not installed "
            "(pip install 'pixel-llm-otel[otel]')"
        )
        return None


def _finish_export(telemetry: DemoTelemetry | None, report: StoryReport) -> ExportReport | None:
    """Flush the telemetry (the last metrics too); with OTLP, add "exported" to the checks."""
    if telemetry is None:
        return None
    telemetry.flush()
    export = telemetry.export_report()
    if export is not None:
        report.checks.append((f"telemetry exported over OTLP to {export.endpoint}", export.ok))
    return export


def _print_results(
    console: Console,
    report: StoryReport,
    telemetry: DemoTelemetry | None,
    export: ExportReport | None,
) -> None:
    from . import render

    render.print_report(console, report)
    render.print_logs(console, report.logs)
    if telemetry is None:
        return
    if telemetry.exporting:
        if export is not None:
            render.print_export(console, export)
        return
    console.rule("[bold]Telemetry: one trace per phase")
    shown = 0
    for phase in report.phases:
        example = phase.example()
        root = telemetry.trace(example.trace_id) if example and example.trace_id else None
        if root is not None:
            render.print_trace(
                console,
                f"{phase.title}: trace {example.trace_id}",  # type: ignore[union-attr]
                root,
            )
            shown += 1
    if not shown:
        console.print(
            "[dim]No spans collected: OpenTelemetry was already set up in this "
            "process by someone else.[/]"
        )
    render.print_metrics(console, telemetry.metrics())
