"""A small host application for the end-to-end tests, run in its own process.

It captions random images with HybridPixelLLM against a simulator URL and prints one JSON line
per call on stdout. Telemetry comes only from the environment: ``--configure`` calls
``pixel_llm_otel.telemetry.configure()`` with no arguments (OTEL_* variables decide everything);
without it the app has no telemetry code at all, for ``opentelemetry-instrument`` (zero code).

    python e2e_app.py --url http://127.0.0.1:PORT/v1 --calls 3 --configure
    python e2e_app.py ... --until-stdin-closes --pace 0.1     # loop until the test says stop

Lines: {"event": "ready"}, then {"event": "call", "i", "t0", "latency", "source", "trace_id",
"attempts", "error"} per call, then {"event": "done", "dropped": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import traceback
from typing import Any


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the simulator's base URL (.../v1)")
    parser.add_argument("--model", default="e2e-model")
    parser.add_argument("--prompt", default=None)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--breaker-name", default="e2e-app")
    parser.add_argument("--calls", type=int, default=1, help="calls to make (without --until)")
    parser.add_argument("--until-stdin-closes", action="store_true")
    parser.add_argument("--max-calls", type=int, default=5000, help="bound of the loop mode")
    parser.add_argument("--pace", type=float, default=0.0, help="seconds between calls")
    parser.add_argument("--no-fallback", action="store_true", help="failures reach the caller")
    parser.add_argument("--configure", action="store_true", help="call configure() at start")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    handle = None
    if args.configure:
        from pixel_llm_otel.telemetry import configure

        handle = configure()  # everything from OTEL_* variables

    import torch

    from pixel_llm_otel.pipeline import ErrorConfig, HybridPixelLLM
    from pixel_llm_otel.resilience.circuit_breaker import CircuitBreakerConfig
    from pixel_llm_otel.resilience.fallback import FallbackConfig
    from pixel_llm_otel.resilience.retry import RetryConfig

    errors = ErrorConfig(
        retry=RetryConfig(
            max_attempts=2, initial_delay=0.01, max_delay=0.05, jitter=False, deadline=5.0
        ),
        circuit_breaker=CircuitBreakerConfig(
            failure_threshold=5, failure_rate_threshold=None, cooldown=1.0
        ),
        fallback=FallbackConfig(enabled=False)
        if args.no_fallback
        else FallbackConfig(order=("cache", "default"), default_value="(no caption)"),
    )
    llm = HybridPixelLLM(
        args.url,
        args.model,
        device="cpu",
        error_config=errors,
        api_key=args.api_key,
        connect_timeout=1.0,
        read_timeout=2.0,
        total_timeout=4.0,
        breaker_name=args.breaker_name,
    )
    stop = threading.Event()
    if args.until_stdin_closes:

        def watch_stdin() -> None:
            sys.stdin.read()  # returns at EOF: the test closed our stdin
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
    generator = torch.Generator().manual_seed(11)
    _emit({"event": "ready"})
    total = args.max_calls if args.until_stdin_closes else args.calls
    try:
        for i in range(total):
            if stop.is_set():
                break
            image = torch.rand(3, 32, 32, generator=generator)
            t0 = time.time()
            record: dict[str, Any] = {"event": "call", "i": i, "t0": t0}
            try:
                result = llm.generate_result(image, args.prompt)
                record.update(
                    source=result.source,
                    trace_id=result.trace_id,
                    attempts=result.attempts,
                    error=None,
                )
            except Exception as exc:  # the tests assert there is none
                record.update(source=None, trace_id=None, attempts=None, error=repr(exc))
                traceback.print_exc()
            record["latency"] = time.time() - t0
            _emit(record)
            if args.pace and not stop.wait(args.pace):
                continue
    finally:
        llm.close()
        dropped = None
        if handle is not None:
            handle.force_flush()
            stats = handle.dropped()
            dropped = {
                "spans": stats.spans,
                "logs": stats.logs,
                "export_failed": stats.export_failed,
                "by_reason": dict(stats.by_reason),
            }
            handle.shutdown()
        _emit({"event": "done", "dropped": dropped})
    return 0


if __name__ == "__main__":
    sys.exit(main())
