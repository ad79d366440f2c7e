"""The pipeline's collaborators, typed: an image encoder and a chat backend.

Beside the observer seam in :mod:`pixel_llm_otel.hooks`, these are the two things the pipeline
calls out to. The core calls them directly through these Protocols; anything of the same shape
stands in (a fake encoder in tests, a pre-built ``VisionEncoder`` shared between pipelines, another
OpenAI-compatible client). Nothing here imports torch, aiohttp or OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .client import ChatCompletion, HealthStatus

__all__ = ["ChatBackend", "ImageEncoder"]


class ImageEncoder(Protocol):
    """Turns a BCHW image batch into features and one text summary per image.

    :class:`~pixel_llm_otel.encoder.VisionEncoder` is the implementation the pipeline builds.
    """

    @property
    def device(self) -> Any:
        """Where it runs (``str()`` of it is telemetry's encoder device, e.g. ``cpu``)."""

    async def encode_async(self, images: Any) -> Any:
        """Features of a validated BCHW float batch, computed off the event loop."""

    def summarize(self, features: Any) -> Sequence[str]:
        """One short line per image describing ``features`` (what ``encode_async`` returned)."""


class ChatBackend(Protocol):
    """One OpenAI-compatible chat request per call; raises typed ``PixelLMError``s.

    :class:`~pixel_llm_otel.client.LMStudioClient` is the implementation the pipeline builds
    (one per event loop).
    """

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ChatCompletion:
        """``POST /chat/completions``: one attempt."""

    async def health(self) -> HealthStatus:
        """Reachability and model list; never raises for server trouble."""

    async def close(self) -> None:
        """Release connections. Idempotent."""
