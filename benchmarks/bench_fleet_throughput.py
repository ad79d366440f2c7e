"""Collector sizing for the two-tier fleet (docs/scaling.md): spans per CPU-second of a gateway
(tail sampling), of an agent (span metrics + load_balancing + persistent queue), and of the single
collector (collector/otelcol.yaml) as the baseline, all measured in the same run.

Each collector runs with its repository config (endpoints on free ports) and exports into
in-process OTLP/gRPC sinks that answer at once, so what is measured is the collector's own work.
The load generator pre-encodes OTLP requests (traces of 5 spans with random ids, 20% of them with
an error span) and sends them raw over gRPC, so the client costs little and the per-request
client CPU is reported beside the throughput. A round sends the same number of spans to each
collector in turn (interleaved) and waits until the collector has passed all of them on (the
gateway: decided every trace); the collector's CPU (utime + stime from /proc) over the round
gives spans per CPU-second, which is the per-core capacity (CPU ticks are 10 ms: rounds are long
enough for ~1% resolution). "accepted spans/s" is the wall-clock rate at which the collector
answered the load generator, bound here by the machine's load. Medians with min-max over rounds.

    python benchmarks/bench_fleet_throughput.py            # 5 rounds of 200,000 spans
    python benchmarks/bench_fleet_throughput.py --quick    # 3 rounds of 40,000 spans

Goal (exit 1 when missed): a gateway and an agent each handle at least 20% of the single
collector's spans per CPU-second (the extra work is tail sampling, or span metrics + routing +
a disk queue: it may cost, but not an order of magnitude). Needs the stack's otelcol
(scripts/build-stack.sh) and grpcio (the otel extra).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as svc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _support.fleet import metric_sum
from _support.procs import free_port, wait_until
from _support.stack import (
    FLEET_AGENT_CONFIG,
    FLEET_GATEWAY_CONFIG,
    OTELCOL_CONFIG,
    Collector,
)

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS_PER_TRACE = 5
TRACES_PER_REQUEST = 100
GOAL_RATIO = 0.20
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- sinks: OTLP/gRPC servers that accept everything ----------------------------------------------


class Sink:
    """An OTLP/gRPC server (traces and metrics) that answers every export with success."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

        def accept(_request: bytes, _context: object) -> bytes:
            return b""  # an empty Export*ServiceResponse

        export = {
            "Export": grpc.unary_unary_rpc_method_handler(
                accept, request_deserializer=None, response_serializer=None
            )
        }
        self.server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(f"opentelemetry.proto.collector.{s}", export)
                for s in ("trace.v1.TraceService", "metrics.v1.MetricsService")
            ]
        )
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Sink:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(0)


# --- load -------------------------------------------------------------------------------------


def encode_requests(count: int, rng: random.Random) -> list[bytes]:
    """`count` serialized ExportTraceServiceRequests of TRACES_PER_REQUEST traces each."""
    resource = resource_pb2.Resource(
        attributes=[
            common_pb2.KeyValue(
                key="service.name", value=common_pb2.AnyValue(string_value="bench")
            ),
            common_pb2.KeyValue(
                key="service.instance.id", value=common_pb2.AnyValue(string_value="bench-1")
            ),
        ]
    )
    now = time.time_ns()
    out = []
    for _ in range(count):
        spans = []
        for _ in range(TRACES_PER_REQUEST):
            trace_id = rng.getrandbits(128).to_bytes(16, "big")
            error = rng.random() < 0.2
            root_id = rng.getrandbits(64).to_bytes(8, "big")
            for i in range(SPANS_PER_TRACE):
                span_id = root_id if i == 0 else rng.getrandbits(64).to_bytes(8, "big")
                spans.append(
                    trace_pb2.Span(
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_span_id=b"" if i == 0 else root_id,
                        name="pixel_llm.generate" if i == 0 else f"step {i}",
                        kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
                        start_time_unix_nano=now,
                        end_time_unix_nano=now + 1_000_000 * (SPANS_PER_TRACE - i),
                        attributes=[
                            common_pb2.KeyValue(
                                key="gen_ai.request.model",
                                value=common_pb2.AnyValue(string_value="bench-model"),
                            )
                        ],
                        status=trace_pb2.Status(
                            code=trace_pb2.Status.STATUS_CODE_ERROR
                            if error and i == SPANS_PER_TRACE - 1
                            else trace_pb2.Status.STATUS_CODE_UNSET
                        ),
                    )
                )
        request = svc.ExportTraceServiceRequest(
            resource_spans=[
                trace_pb2.ResourceSpans(
                    resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=spans)]
                )
            ]
        )
        out.append(request.SerializeToString())
    return out


def send(target: str, requests: list[bytes], parallel: int = 4) -> float:
    """Send the pre-encoded requests (raw bytes over gRPC, `parallel` at a time); returns the
    load generator's CPU seconds."""
    cpu0 = time.process_time()
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        with futures.ThreadPoolExecutor(parallel) as pool:
            for result in pool.map(lambda body: call(body, timeout=60), requests):
                assert result is not None
    return time.process_time() - cpu0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


# --- cases ------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    collector: Collector
    passed_on: Callable[[], float]  # spans (or traces x SPANS_PER_TRACE) the collector is done with


def make_cases(workdir: Path, sinks: list[Sink]) -> list[Case]:
    jaeger = sinks[0].target
    single = Collector(workdir, OTELCOL_CONFIG, jaeger, name="single")
    gateway = Collector(
        workdir,
        FLEET_GATEWAY_CONFIG,
        jaeger,
        {"OTELCOL_TAIL_DECISION_WAIT": "2s", "OTELCOL_TAIL_DECISION_AFTER_ROOT": "200ms"},
        name="gateway",
    )
    queue = workdir / "queue"
    queue.mkdir()
    agent = Collector(
        workdir,
        FLEET_AGENT_CONFIG,
        jaeger,
        {
            "OTELCOL_GATEWAYS": f"[{sinks[1].target}, {sinks[2].target}]",
            "OTELCOL_QUEUE_DIR": str(queue),
        },
        name="agent",
    )

    def sent(collector: Collector, exporter: str) -> Callable[[], float]:
        return lambda: metric_sum(
            collector.metrics_target, "otelcol_exporter_sent_spans", exporter=exporter
        )

    def decided() -> float:
        traces = metric_sum(
            gateway.metrics_target, "otelcol_processor_tail_sampling_global_count_traces_sampled"
        )
        return traces * SPANS_PER_TRACE

    return [
        Case("single collector (baseline)", single, sent(single, "otlp_grpc/jaeger")),
        Case("gateway (tail sampling)", gateway, decided),
        Case(
            "agent (span metrics, load_balancing, file queue)",
            agent,
            sent(agent, "load_balancing/traces"),
        ),
    ]


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):>9,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None, help="requests per round and case")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    per_round = args.requests or (80 if args.quick else 400)
    spans_per_round = per_round * TRACES_PER_REQUEST * SPANS_PER_TRACE
    rng = random.Random(20261130)

    per_cpu: dict[str, list[float]] = {}
    per_wall: dict[str, list[float]] = {}
    client_us: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp,
        Sink() as s0,
        Sink() as s1,
        Sink() as s2,
    ):
        cases = make_cases(Path(tmp), [s0, s1, s2])
        try:
            for case in cases:
                case.collector.start()
            for case in cases:
                case.collector.wait_ready(60)
            for r in range(rounds):
                order = cases if r % 2 == 0 else list(reversed(cases))
                for case in order:
                    pid = case.collector.pid
                    assert pid is not None
                    requests = encode_requests(per_round, rng)  # fresh trace ids every time
                    done_before = case.passed_on()
                    cpu0, t0 = cpu_seconds(pid), time.monotonic()
                    client_cpu = send(
                        case.collector.otlp_grpc_endpoint.removeprefix("http://"), requests
                    )
                    accepted = time.monotonic() - t0
                    wait_until(
                        lambda c=case, b=done_before: c.passed_on() - b >= spans_per_round or None,
                        timeout=300,
                        interval=0.1,
                        what=f"{case.name} to pass on {spans_per_round} spans",
                    )
                    cpu = cpu_seconds(pid) - cpu0
                    per_cpu.setdefault(case.name, []).append(spans_per_round / cpu)
                    per_wall.setdefault(case.name, []).append(spans_per_round / accepted)
                    client_us.setdefault(case.name, []).append(client_cpu / per_round * 1e6)
        finally:
            for case in cases:
                case.collector.stop()

    base = statistics.median(per_cpu[cases[0].name])
    print(
        f"\n{rounds} rounds x {spans_per_round:,} spans per collector, interleaved;"
        " median (min-max)"
    )
    print(
        f"{'collector':<50} {'spans/CPU-s':>26} {'ratio':>6} {'accepted spans/s':>26}"
        f" {'client us/req':>14}"
    )
    ok = True
    for case in cases:
        ratio = statistics.median(per_cpu[case.name]) / base
        print(
            f"{case.name:<50} {fmt(per_cpu[case.name]):>26} {ratio:>6.2f} "
            f"{fmt(per_wall[case.name]):>26} {statistics.median(client_us[case.name]):>14,.0f}"
        )
        if case is not cases[0] and ratio < GOAL_RATIO:
            ok = False
    print(
        "\nspans/CPU-s is per core; accepted spans/s depends on the machine's load"
        f" (os.cpu_count()={os.cpu_count()}, os.getloadavg()[0]={os.getloadavg()[0]:.1f})"
    )
    if not ok:
        print(f"GOAL MISSED: a tier below {GOAL_RATIO:.0%} of the baseline's spans per CPU-second")
        return 1
    print(
        f"goal met: every tier at or above {GOAL_RATIO:.0%} of the baseline's spans per CPU-second"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
