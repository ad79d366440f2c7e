"""Helpers of the pipeline tests: a fake encoder, fast error settings, a recording observer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from pixel_llm_otel.hooks import ChatRequestInfo, ChatResponseInfo
from pixel_llm_otel.resilience.circuit_breaker import CircuitBreakerConfig
from pixel_llm_otel.resilience.retry import RetryConfig

MODEL = "sim-model"


class FakeEncoder:
    """A stand-in for the ViT: per-channel means as features, counts its passes."""

    device = "cpu"

    def __init__(self) -> None:
        self.passes: list[int] = []

    async def encode_async(self, batch: torch.Tensor) -> torch.Tensor:
        self.passes.append(int(batch.shape[0]))
        return batch.mean(dim=(2, 3))

    def summarize(self, features: torch.Tensor) -> list[str]:
        return ["mean rgb " + ", ".join(f"{v:.2f}" for v in row.tolist()) for row in features]


def fast_errors(
    *,
    attempts: int = 3,
    threshold: int | None = 50,
    cooldown: float = 30.0,
    deadline: float = 10.0,
    **fallback: Any,
) -> dict[str, Any]:
    """An error_config mapping with millisecond backoff (no test waits for real)."""
    return {
        "retry": RetryConfig(
            max_attempts=attempts,
            initial_delay=0.001,
            max_delay=0.005,
            jitter=False,
            deadline=deadline,
        ),
        "circuit_breaker": CircuitBreakerConfig(
            failure_threshold=threshold, failure_rate_threshold=None, cooldown=cooldown
        ),
        "fallback": fallback,
    }


@dataclass
class Recorded:
    """What a recording observer saw."""

    generates: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    encodes: list[dict[str, Any]] = field(default_factory=list)
    chats: list[dict[str, Any]] = field(default_factory=list)


class _Scope:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    @property
    def trace_id(self) -> str | None:
        return "0" * 31 + "1"

    def finish(self, **kw: Any) -> None:
        assert "finish" not in self.record, "finish() called twice"
        self.record["finish"] = kw

    def fail(self, error: BaseException) -> None:
        self.record.setdefault("failed", []).append(error)

    def response(self, info: ChatResponseInfo) -> None:
        self.record["response"] = info

    def attempts(self, count: int) -> None:
        self.record["attempts"] = count


class RecordingObserver:
    """A PipelineObserver that keeps every scope's facts."""

    def __init__(self) -> None:
        self.seen = Recorded()

    @contextlib.contextmanager
    def _scope(self, into: list[dict[str, Any]], **facts: Any) -> Iterator[_Scope]:
        record: dict[str, Any] = dict(facts)
        into.append(record)
        try:
            yield _Scope(record)
        except BaseException as exc:
            record["escaped"] = exc
            raise

    def generate(self, *, model: str, batch_size: int, provider: str) -> Any:
        return self._scope(
            self.seen.generates, model=model, batch_size=batch_size, provider=provider
        )

    def generate_batch(self, *, model: str, batch_size: int, provider: str) -> Any:
        return self._scope(self.seen.batches, model=model, batch_size=batch_size, provider=provider)

    def encode(self, *, encoder_type: str, device: str, batch_size: int) -> Any:
        return self._scope(
            self.seen.encodes, encoder_type=encoder_type, device=device, batch_size=batch_size
        )

    def chat(self, request: ChatRequestInfo) -> Any:
        return self._scope(self.seen.chats, request=request)
