"""Rendering the demo with rich: the progress bar, the phase table, trace trees, metrics.

Only this module (and the CLI) writes to the terminal; it takes plain data from
:mod:`~pixel_llm_otel.demo.story` and :mod:`~pixel_llm_otel.demo._telemetry`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

if TYPE_CHECKING:
    from ._telemetry import ExportReport, MetricLine, SpanNode
    from .story import PhaseReport, StoryReport
    from .story import Progress as ProgressFn

__all__ = [
    "print_export",
    "print_intro",
    "print_logs",
    "print_metrics",
    "print_report",
    "print_trace",
    "progress_bar",
]

_STATE_STYLE = {"closed": "green", "open": "red", "half_open": "yellow"}


def print_intro(console: Console, target: str, simulated: bool) -> None:
    console.rule("[bold]pixel-llm-otel demo")
    if simulated:
        console.print(
            f"Fault simulator on [cyan]{target}[/]. Story: healthy -> transient errors "
            "(retries) -> outage (breaker opens, cache answers) -> recovery (half-open probe) "
            "-> streaming (captions written chunk by chunk)."
        )
    else:
        console.print(
            f"Real server at [cyan]{target}[/]: the healthy and streaming phases run; the fault "
            "phases need the simulator (run without --url to see them)."
        )


@contextmanager
def progress_bar(console: Console, total: int) -> Iterator[ProgressFn]:
    """A progress bar over every call of the story; yields the story's progress callback."""
    columns = (
        TextColumn("[bold blue]{task.description:<44}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("starting", total=total)
        offsets: dict[str, int] = {}
        state = {"done": 0}

        def update(description: str, done_in_phase: int) -> None:
            phase = description.split(":")[0]
            if phase not in offsets:
                offsets[phase] = state["done"]
            state["done"] = offsets[phase] + done_in_phase
            bar.update(task, description=description, completed=state["done"])

        yield update
        bar.update(task, description="done")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def phase_table(phases: Sequence[PhaseReport]) -> Table:
    """Calls, LLM answers, retries, fallbacks, failures, server requests, breaker, p50/p95, and
    the streamed calls' time to first chunk."""
    # no vertical rules: twelve columns fit a 120-column terminal
    table = Table(
        title="Per phase", header_style="bold", box=box.SIMPLE_HEAVY, collapse_padding=True
    )
    for name, justify in (
        ("Phase", "left"),
        ("Calls", "right"),
        ("LLM", "right"),
        ("Retries", "right"),
        ("Fallbacks", "right"),
        ("Rejected", "right"),
        ("Failed", "right"),
        ("Server saw", "right"),
        ("Breaker", "left"),
        ("p50", "right"),
        ("p95", "right"),
        ("TTFC", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for p in phases:
        if p.skipped:  # why: under the table (a note in a column squeezes every other column)
            table.add_row(f"[dim]{p.title}[/]", *["[dim]skipped[/]"] + ["-"] * 10)
            continue
        style = _STATE_STYLE.get(p.breaker_end, "")
        breaker = f"[{style}]{p.breaker_end}[/]"
        table.add_row(
            p.title,
            str(len(p.calls)),
            str(p.llm),
            str(p.retries),
            str(p.fallbacks),
            str(p.rejected),
            str(p.failed),
            "unknown" if p.server_requests is None else str(p.server_requests),
            breaker,
            _ms(p.percentile(0.50)),
            _ms(p.percentile(0.95)),
            _ms(p.ttfc_percentile(0.50)),
        )
    return table


def print_report(console: Console, report: StoryReport) -> None:
    console.print(phase_table(report.phases))
    skipped = [p for p in report.phases if p.skipped]
    for reason in dict.fromkeys(p.skipped for p in skipped):
        titles = ", ".join(p.title for p in skipped if p.skipped == reason)
        console.print(f"[dim]Skipped: {titles}: {reason}.[/]")
    console.print(
        "[dim]Retries: extra HTTP attempts. Fallbacks: answers from the cache or the default. "
        "Rejected: refused by the open breaker without a request. Server saw: requests that "
        "reached the simulator (unknown for a real server). TTFC: median time to the first chunk "
        "of a streamed caption.[/]"
    )
    moves = [(p.title, t) for p in report.phases for t in p.transitions]
    if moves:
        console.print("[bold]Circuit breaker transitions[/]")
        for title, move in moves:
            console.print(f"  {title:<18} {move}")
    for text, passed in report.checks:
        mark = "[green]✓[/]" if passed else "[red]✗[/]"
        console.print(f" {mark} {text}")


def print_export(console: Console, export: ExportReport) -> None:
    """Where the telemetry went, and whether the collector took it."""
    where = f"[cyan]{export.endpoint}[/] (OTLP {export.protocol})"
    if export.ok:
        console.print(f"[green]Telemetry exported[/] to {where}: the collector accepted it.")
        return
    if not export.accepted:
        console.print(
            f"[red]Telemetry NOT exported[/]: the collector at {where} did not accept an OTLP "
            f"export. The stack listens for OTLP/HTTP on 4318 and OTLP/gRPC on 4317; for gRPC set "
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc. `scripts/stack.sh env` prints lines that work."
        )
    if export.dropped_spans or export.dropped_logs:
        console.print(
            f"[red]{export.dropped_spans} spans and {export.dropped_logs} log records were "
            "dropped or failed to export[/] (pixel_llm.telemetry.dropped)."
        )


def print_trace(console: Console, title: str, root: SpanNode) -> None:
    """One trace as a tree: span name, duration, status, key attributes, events."""
    tree = Tree(f"[bold]{title}[/]")
    _add_span(tree, root)
    console.print(tree)


def _add_span(parent: Tree, node: SpanNode) -> None:
    colour = "red" if node.status == "ERROR" else "green"
    status = "" if node.status == "UNSET" else f" [{colour}]{node.status}[/]"
    attrs = ", ".join(f"{k}={v}" for k, v in node.attributes)
    branch = parent.add(
        f"[cyan]{node.name}[/] {node.duration_ms:.1f} ms{status}"
        + (f" [dim]{attrs}[/]" if attrs else "")
    )
    for event in node.events:
        branch.add(f"[magenta]event[/] {event}")
    for child in node.children:
        _add_span(branch, child)


def print_metrics(console: Console, lines: Sequence[MetricLine]) -> None:
    table = Table(title="Metrics (in-memory reader)", header_style="bold")
    table.add_column("metric")
    table.add_column("attributes")
    table.add_column("value", justify="right")
    for line in lines:
        table.add_row(line.name, line.attributes, line.value)
    console.print(table)


def print_logs(console: Console, text: str, sample: int = 2) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return
    console.print(f"[bold]Structured logs[/]: {len(lines)} JSON lines, e.g.:")
    for line in lines[:sample]:
        console.print(
            line if len(line) <= 300 else line[:297] + "...",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
