"""The pipeline's failure log lines: WARNING when a fallback served, ERROR when nothing did."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors.classifier import DEFAULT_CLASSIFIER
from ..monitoring import StructuredLogger

if TYPE_CHECKING:
    from .config import HybridConfig

__all__ = ["default_logger", "log_failure"]


_shared_logger: StructuredLogger | None = None


def default_logger() -> StructuredLogger:
    """One JSON logger (stderr, WARNING and up) shared by pipelines built without a logger."""
    global _shared_logger
    if _shared_logger is None:
        # stream=None: whatever sys.stderr is when a record is written
        _shared_logger = StructuredLogger("pixel_llm_otel.pipeline", level="WARNING")
    return _shared_logger


def log_failure(
    log: StructuredLogger,
    error: BaseException,
    attempts: int,
    strategy: str | None,
    config: HybridConfig,
) -> None:
    """WARNING when a fallback served (degraded), ERROR when the caller gets nothing."""
    info = DEFAULT_CLASSIFIER.classify(error)
    context = {
        "error_type": info.error_type,
        "error_category": str(info.category),
        "attempts": attempts,
        "fallback_strategy": strategy,
        "model": config.lm_studio_model,
        "url": config.lm_studio_url,
    }
    if strategy is not None:
        log.warning(
            "generate degraded: %s; served by the %s fallback",
            error,
            strategy,
            error_code=info.code,
            context=context,
        )
    else:
        log.error(
            "generate failed after %d attempt(s): %s",
            attempts,
            error,
            error_code=info.code,
            context=context,
        )
