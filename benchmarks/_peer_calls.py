"""The worker side of ``bench_overhead_vs_peers.py``: telemetry set-ups and the calls they time.

A worker process is one telemetry set-up (``SETUPS``), made once as a user would, and runs any
of the call kinds (``KINDS``) against a simulator it is told about. Every instrumented set-up
uses the same SDK providers: those of one :func:`pixel_llm_otel.telemetry.configure` call with a
no-op span exporter (batch processor) and an in-memory metric reader (trace-based exemplars).

    none         nothing configured: the uninstrumented pipeline, plain aiohttp, AsyncOpenAI
    ours         configure(): this project's instrumentation
    ours-unsampled  the same with a parent-based sampler whose root says no
    floor        configure() then our instrumentor uninstrumented: the providers only; the
                 ``floor`` kind replays, by hand, the spans, attributes, events and metric
                 records that ``ours`` emitted for one call, around one plain aiohttp request,
                 each attribute given when ours gave it (at span start, or set once the
                 response is in: a hand-written instrumentation cannot know the response's
                 model, tokens or finish reasons before it arrives); ``floor-at-start`` gives
                 every attribute at span start (an idealised floor, no real code can);
                 ``floor-pipeline`` replays the same telemetry around the uninstrumented
                 pipeline's whole ``generate`` instead of one plain request (a diagnostic: the
                 SDK's cost with the pipeline's own code in the loop, evicted from the caches
                 by the telemetry code around it just as under ours);
                 ``metrics-floor`` replays only its metric records (what every call, sampled
                 out or not, pays the SDK)
    official     configure(), ours uninstrumented, then the official GenAI openai
                 instrumentation (opentelemetry-instrumentation-genai-openai) on AsyncOpenAI
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from _common import MODEL, FixedEncoder, serve

PROMPT = "Describe this image."
SETUPS = ("none", "ours", "ours-unsampled", "floor", "official")
KINDS = (
    "generate",
    "encoded",
    "encoded-default",
    "client",
    "plain",
    "plain-per-call",
    "floor",
    "floor-at-start",
    "floor-pipeline",
    "metrics-floor",
    "openai",
)


def _exporter() -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class RecordingExporter(SpanExporter):
        """No-op span exporter; keeps the spans it gets only while ``keep`` is set."""

        def __init__(self) -> None:
            self.keep = False
            self.kept: list[Any] = []
            self.spans = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.spans += len(spans)
            if self.keep:
                self.kept.extend(spans)
            return SpanExportResult.SUCCESS

    return RecordingExporter()


def _configure(setup: str) -> tuple[Any, Any]:
    """``(handle, exporter)`` of the set-up's providers; ``(None, None)`` for ``none``."""
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]  # only the arguments below decide what is recorded
    if setup == "none":
        return None, None
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from pixel_llm_otel.telemetry import configure

    sampler = None
    if setup == "ours-unsampled":
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

        sampler = ParentBased(ALWAYS_OFF)
    exporter = _exporter()
    handle = configure(
        span_exporter=exporter, metric_reader=InMemoryMetricReader(), sampler=sampler
    )
    return handle, exporter


# --- the floor: one call's telemetry, recorded from ``ours`` and replayed by hand --------------
@dataclass
class SpanShape:
    name: str
    kind: Any
    attributes: dict[str, Any]  # given at span start
    late: dict[str, Any]  # set after the start (the response's and the outcome's)
    events: list[tuple[str, dict[str, Any]]]
    children: list[SpanShape] = field(default_factory=list)


@dataclass
class Shape:
    """What one instrumented generate call emitted."""

    root: SpanShape
    records: list[tuple[Any, str, Any, dict[str, Any]]]  # (instrument, method, value, attributes)
    spans: int
    attributes: int
    late: int
    events: int

    def describe(self) -> str:
        return (
            f"{self.spans} spans, {self.attributes} attributes ({self.late} set after the "
            f"start), {self.events} events, {len(self.records)} metric records"
        )


@contextmanager
def _recording_metrics(records: list[tuple[Any, str, Any, dict[str, Any]]]) -> Iterator[None]:
    """Log every synchronous instrument record made meanwhile (the SDK's own classes)."""
    from opentelemetry.sdk.metrics._internal import instrument as sdk

    patched = [(sdk.Counter, "add"), (sdk.UpDownCounter, "add"), (sdk.Histogram, "record"),
               (sdk.Gauge, "set")]  # fmt: skip
    originals = [(cls, name, cls.__dict__[name]) for cls, name in patched]
    for cls, name, original in originals:

        def spy(self: Any, amount: Any, attributes: Any = None, *a: Any, _o: Any = original,
                _n: str = name, **k: Any) -> Any:  # fmt: skip
            records.append((self, _n, amount, dict(attributes or {})))
            return _o(self, amount, attributes, *a, **k)

        setattr(cls, name, spy)
    try:
        yield
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


@contextmanager
def _recording_starts(starts: dict[int, dict[str, Any]]) -> Iterator[None]:
    """Snapshot each span's attributes as it starts (the SDK's ``Span.start``), by span id."""
    from opentelemetry.sdk import trace as sdk

    original = sdk.Span.start

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        starts[self.context.span_id] = dict(self.attributes or {})
        original(self, *args, **kwargs)

    sdk.Span.start = spy  # type: ignore[method-assign]
    try:
        yield
    finally:
        sdk.Span.start = original  # type: ignore[method-assign]


def _shape(span: Any, started: dict[str, Any]) -> SpanShape:
    final = dict(span.attributes or {})
    late = {k: v for k, v in final.items() if k not in started or started[k] != v}
    early = {k: v for k, v in final.items() if k not in late}
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    return SpanShape(span.name, span.kind, early, late, events)


def _tree(spans: Sequence[Any], starts: dict[int, dict[str, Any]]) -> SpanShape:
    by_id = {s.context.span_id: s for s in spans}
    shapes = {s.context.span_id: _shape(s, starts[s.context.span_id]) for s in spans}
    root = None
    for s in sorted(spans, key=lambda s: s.start_time or 0):
        parent = s.parent.span_id if s.parent is not None else None
        if parent in by_id:
            shapes[parent].children.append(shapes[s.context.span_id])
        else:
            root = shapes[s.context.span_id]
    if root is None:
        raise RuntimeError("no root span recorded")
    return root


async def record_shape(worker: Worker) -> Shape:
    """Run ``ours`` for a few calls, keep the last call's spans and metric records."""
    exporter, handle = worker.exporter, worker.handle
    for _ in range(3):
        await worker.kinds["generate"]()
    handle.force_flush(5000)
    records: list[tuple[Any, str, Any, dict[str, Any]]] = []
    starts: dict[int, dict[str, Any]] = {}
    exporter.keep, exporter.kept = True, []
    with _recording_metrics(records), _recording_starts(starts):
        await worker.kinds["generate"]()
    handle.force_flush(5000)
    exporter.keep = False
    root = _tree(exporter.kept, starts)
    attributes = sum(len(s.attributes or {}) for s in exporter.kept)
    late = _count_late(root)
    events = sum(len(s.events) for s in exporter.kept)
    return Shape(root, records, len(exporter.kept), attributes, late, events)


def _count_late(shape: SpanShape) -> int:
    return len(shape.late) + sum(_count_late(child) for child in shape.children)


Plain = Callable[[dict[str, str]], Awaitable[Any]]


def floor_call(
    shape: Shape, plain: Plain, *, at_start: bool = False
) -> Callable[[], Awaitable[Any]]:
    """The hand-written floor: ``shape``'s spans nested as recorded, the HTTP request in the
    innermost CLIENT span (trace context injected), the attributes ours set after a span's
    start set in one ``set_attributes`` before it ends (``at_start``: every attribute given at
    the start instead), the metric records at the end of the root."""
    from opentelemetry import propagate, trace

    tracer = trace.get_tracer("bench.floor")
    records = [
        (getattr(inst, method), value, attrs) for inst, method, value, attrs in shape.records
    ]
    client_kind = trace.SpanKind.CLIENT

    def split(span_shape: SpanShape) -> tuple[dict[str, Any], dict[str, Any]]:
        if at_start:
            return {**span_shape.attributes, **span_shape.late}, {}
        return span_shape.attributes, span_shape.late

    async def replay(span_shape: SpanShape, is_root: bool) -> Any:
        early, late = split(span_shape)
        with tracer.start_as_current_span(
            span_shape.name, kind=span_shape.kind, attributes=early
        ) as span:
            for name, attrs in span_shape.events:
                span.add_event(name, attrs)
            result = None
            for child in span_shape.children:
                result = await replay(child, False)
            if not span_shape.children and span_shape.kind is client_kind:
                headers: dict[str, str] = {}
                propagate.inject(headers)
                result = await plain(headers)
            if late:
                span.set_attributes(late)
            if is_root:
                for record, value, attrs in records:
                    record(value, attrs)
            return result

    def call() -> Awaitable[Any]:
        return replay(shape.root, True)

    return call


def metrics_floor_call(shape: Shape, plain: Plain) -> Callable[[], Awaitable[Any]]:
    """The metric records' own floor: ``shape``'s metric records by hand, no span, around the
    same aiohttp request. Every call pays these (metrics count sampled-out calls too), so this
    is what a sampled-out call cannot go below through the SDK."""
    records = [
        (getattr(inst, method), value, attrs) for inst, method, value, attrs in shape.records
    ]

    async def call() -> Any:
        result = await plain({})
        for record, value, attrs in records:
            record(value, attrs)
        return result

    return call


# --- a worker ----------------------------------------------------------------------------------
@dataclass
class Worker:
    setup: str
    handle: Any
    exporter: Any
    loop: asyncio.AbstractEventLoop
    kinds: dict[str, Callable[[], Awaitable[Any]]] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    shape: Shape | None = None
    failures: int = 0

    async def _calls(self, kind: str, count: int, concurrency: int) -> None:
        one = self.kinds[kind]

        async def run(n: int) -> None:
            for _ in range(n):
                if await one() is None:
                    self.failures += 1

        share, extra = divmod(count, concurrency)
        await asyncio.gather(*(run(share + (i < extra)) for i in range(concurrency)))

    def timed(self, kind: str, count: int, concurrency: int) -> tuple[float, float]:
        """``(wall s, process CPU s)`` of ``count`` calls; export settled (and counted) after."""
        cpu, started = time.process_time(), time.perf_counter()
        self.loop.run_until_complete(self._calls(kind, count, concurrency))
        wall = time.perf_counter() - started
        if self.handle is not None:
            self.handle.force_flush(5000)
        return wall, time.process_time() - cpu


async def _build(worker: Worker, sim_url: str) -> None:
    import aiohttp
    import torch

    from pixel_llm_otel.client._payload import build_chat_payload, encode_json
    from pixel_llm_otel.monitoring import StructuredLogger
    from pixel_llm_otel.pipeline import AsyncHybridPixelLLM
    from pixel_llm_otel.pipeline._prompt import build_messages

    logger = StructuredLogger("bench", level="ERROR", stream=io.StringIO())
    # As many requests in flight as plain aiohttp has at the highest concurrency measured (64):
    # like for like. The default (16) queues the rest; that variant is the "default slots" kind.
    llm = AsyncHybridPixelLLM(
        lm_studio_url=sim_url, lm_studio_model=MODEL, encoder=FixedEncoder(), logger=logger,
        max_concurrency=64,
    )  # fmt: skip
    default_slots = AsyncHybridPixelLLM(
        lm_studio_url=sim_url, lm_studio_model=MODEL, encoder=FixedEncoder(), logger=logger
    )
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(7))
    encoded = await llm.encode(image)
    worker.kinds["encoded-default"] = lambda: default_slots.generate_encoded(encoded, prompt=PROMPT)
    worker.closers.append(default_slots.aclose)
    worker.kinds["generate"] = lambda: llm.generate(image, prompt=PROMPT)
    worker.kinds["encoded"] = lambda: llm.generate_encoded(encoded, prompt=PROMPT)
    worker.closers.append(llm.aclose)

    # Plain aiohttp: the same chat request the pipeline sends, posted and parsed. ``plain``
    # posts a body serialised once at start-up (the floor's request); ``plain-per-call`` builds
    # the payload dict and lets aiohttp serialise it per call (``json=``), as any aiohttp user
    # posting a chat request must, and as our client does: goal 3's baseline.
    messages = build_messages(PROMPT, encoded.summary, ())
    max_tokens, temperature = llm.config.call.max_tokens, llm.config.call.temperature
    payload = build_chat_payload(messages, model=MODEL, max_tokens=max_tokens,
                                 temperature=temperature, stream=False, extra=None)  # fmt: skip
    body = encode_json(payload)
    url = sim_url.rstrip("/") + "/chat/completions"
    base_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    worker.closers.append(session.close)

    async def plain(headers: dict[str, str] | None = None) -> Any:
        all_headers = {**base_headers, **headers} if headers else base_headers
        async with session.post(url, data=body, headers=all_headers) as resp:
            resp.raise_for_status()
            return json.loads(await resp.read())

    worker.kinds["plain"] = plain

    async def plain_per_call() -> Any:
        request = {"model": MODEL, "messages": messages, "max_tokens": max_tokens,
                   "temperature": temperature}  # fmt: skip
        async with session.post(url, json=request, headers=base_headers) as resp:
            resp.raise_for_status()
            return json.loads(await resp.read())

    worker.kinds["plain-per-call"] = plain_per_call

    # The project's client alone (no pipeline core): the same request through LMStudioClient.
    from pixel_llm_otel.client import LMStudioClient

    client_only = LMStudioClient(sim_url, pool_limit=100)
    worker.closers.append(client_only.close)

    def client_call() -> Awaitable[Any]:
        return client_only.chat(
            messages, model=MODEL, max_tokens=max_tokens, temperature=temperature
        )

    worker.kinds["client"] = client_call

    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=sim_url, api_key="bench", max_retries=0)
    worker.closers.append(client.close)

    async def openai_call() -> Any:
        return await client.chat.completions.create(
            model=MODEL,
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,  # type: ignore[arg-type]
        )

    worker.kinds["openai"] = openai_call


def make_worker(setup: str, sim_url: str) -> Worker:
    handle, exporter = _configure(setup)
    worker = Worker(setup, handle, exporter, asyncio.new_event_loop())
    worker.loop.run_until_complete(_build(worker, sim_url))
    if setup in ("floor", "official"):
        from pixel_llm_otel import hooks
        from pixel_llm_otel.telemetry import PixelLLMInstrumentor

        if setup == "floor":
            worker.shape = worker.loop.run_until_complete(record_shape(worker))
            plain = worker.kinds["plain"]
            worker.kinds["floor"] = floor_call(worker.shape, plain)
            worker.kinds["floor-at-start"] = floor_call(worker.shape, plain, at_start=True)
            generate = worker.kinds["generate"]  # uninstrumented once ours is removed below
            worker.kinds["floor-pipeline"] = floor_call(worker.shape, lambda _: generate())
            worker.kinds["metrics-floor"] = metrics_floor_call(worker.shape, plain)
        PixelLLMInstrumentor().uninstrument()
        if hooks.get_observer() is not hooks.NOOP_OBSERVER:
            raise RuntimeError(f"{setup}: our observer is still installed")
        if setup == "official":
            from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

            OpenAIInstrumentor().instrument()
    return worker


def worker_main(setup: str, sim_url: str, conn: Connection) -> None:
    """Serve ``run`` / ``info`` / ``stop`` from the parent."""

    def build() -> tuple[Worker, str | None]:
        worker = make_worker(setup, sim_url)
        return worker, worker.shape.describe() if worker.shape is not None else None

    serve(conn, build, _handle)


def _handle(worker: Worker, command: str, args: tuple[Any, ...]) -> tuple[Any, bool]:
    if command == "run":
        return worker.timed(*args), False
    if command == "info":
        return {"failures": worker.failures}, False
    for close in worker.closers:  # stop
        worker.loop.run_until_complete(close())
    if worker.handle is not None:
        worker.handle.shutdown()
    return None, True
