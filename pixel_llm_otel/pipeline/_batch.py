"""Batches: one encoder pass for every image, then one caption per image, concurrently.

The per-image captions run as tasks under one ``generate_batch`` scope, each with its own
``generate`` scope; concurrency on the wire is bounded by the core's per-loop semaphore
(``max_concurrency``). The retry deadline bounds the whole batch: items waiting for a slot
share it. One image's failure ends in its own fallback or error result and never fails
the others. If the shared encoder pass fails, every image's result carries that ``EncoderError``
(after its fallback chain was tried). An item's ``latency`` covers its own chat and fallback, not
the shared encoder pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from .. import hooks
from ..errors import ValidationError
from ..resilience.retry import deadline_scope
from ._prompt import CallOptions, check_images
from .result import GenerateResult

if TYPE_CHECKING:
    import torch

    from ._core import Encoded, PipelineCore

__all__ = ["caption_batch", "check_batch"]


def check_batch(images: object) -> torch.Tensor:
    """A validated BCHW batch from a BCHW tensor or a sequence of same-sized CHW tensors."""
    import torch

    if isinstance(images, torch.Tensor):
        return check_images(images)
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence) or not images:
        raise ValidationError(
            field="images",
            value=images,
            expected="a BCHW tensor or a non-empty sequence of CHW tensors",
        )
    items = [check_images(image, name=f"images[{i}]") for i, image in enumerate(images)]
    shapes = {tuple(item.shape[1:]) for item in items}
    if len(shapes) != 1:
        raise ValidationError(
            field="images",
            value=sorted(shapes),
            expected="images of one shape (resize them first)",
        )
    return torch.cat(items)


async def caption_batch(
    core: PipelineCore, batch: torch.Tensor, options: CallOptions
) -> list[GenerateResult]:
    """One result per image of ``batch`` (BCHW, validated), in order."""
    observer = hooks.get_observer()
    size = int(batch.shape[0])
    item_options = replace(options, raise_on_failure=False)
    with (
        deadline_scope(core.deadline_for(options), clock=core.clock),  # one for the batch
        observer.generate_batch(
            model=core.config.lm_studio_model, batch_size=size, provider=core.config.provider_name
        ) as scope,
    ):
        encoded: list[Encoded] | BaseException
        try:
            encoded = await core.encode(batch, per_image=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # each item reports it through its own fallback chain
            encoded = exc
        tasks = [
            core.caption(
                batch[i : i + 1],
                item_options,
                encoded=encoded if isinstance(encoded, BaseException) else encoded[i],
                batch_size=1,
            )
            for i in range(size)
        ]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException as exc:
            scope.finish(outcome="error", attempts=0, error=exc)
            raise
        _finish(scope, results)
    return results


def _finish(scope: hooks.GenerateScope, results: list[GenerateResult]) -> None:
    """The batch outcome: error if any image got no text, fallback if any was degraded."""
    attempts = sum(r.attempts for r in results)
    failed = [r for r in results if r.text is None]
    if failed:
        scope.finish(outcome="error", attempts=attempts, error=failed[0].error)
        return
    degraded = [r for r in results if r.source != "llm"]
    if degraded:
        scope.finish(
            outcome="fallback",
            attempts=attempts,
            fallback_strategy=degraded[0].source,
            error=degraded[0].error,
        )
        return
    scope.finish(outcome="success", attempts=attempts)
