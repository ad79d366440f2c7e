"""The pipeline's seams to its collaborators: the HTTP client, the encoder and the fallback stats.

Kept in one place so the orchestration in ``_core`` reads as the pipeline and nothing else, and
so a test (or another encoder) can stand in for a collaborator with a small object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..client import ChatCompletion, LMStudioClient
from ..hooks import ChatResponseInfo

if TYPE_CHECKING:
    import torch

    from ..resilience.fallback import FallbackManager
    from .config import HybridConfig

__all__ = [
    "build_client",
    "build_encoder",
    "cache_entries",
    "chat",
    "close_client",
    "close_encoder",
    "encode_and_summarize",
    "encoder_device",
    "health",
    "png_data_urls",
    "response_info",
]


# --- HTTP client ----------------------------------------------------------------------------
def build_client(config: HybridConfig) -> LMStudioClient:
    """A client for the running loop (an aiohttp session belongs to one loop)."""
    return LMStudioClient(
        config.lm_studio_url,
        api_key=config.api_key,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        total_timeout=config.total_timeout,
        pool_limit=max(100, config.max_concurrency),
    )


async def close_client(client: LMStudioClient) -> None:
    await client.close()


def chat(
    client: LMStudioClient,
    messages: Sequence[Mapping[str, Any]],
    model: str,
    max_tokens: int,
    temperature: float,
) -> Awaitable[ChatCompletion]:
    """One HTTP attempt, to await (the client raises typed errors). Returns the client's own
    coroutine rather than wrapping it in another: this runs once per request."""
    return client.chat(messages, model=model, max_tokens=max_tokens, temperature=temperature)


def response_info(completion: ChatCompletion) -> ChatResponseInfo:
    return completion.to_response_info()


async def health(client: LMStudioClient) -> tuple[bool, list[str], str | None]:
    """Reachable?, the model ids, the error text. Never raises for server trouble."""
    status = await client.health()
    error = None if status.error is None else str(status.error)
    return status.available, list(status.models), error


# --- encoder --------------------------------------------------------------------------------
def build_encoder(config: HybridConfig) -> Any:
    """The vision encoder, built once per pipeline."""
    from ..encoder import build_encoder as build

    return build(config.encoder_type, config.encoder_config, device=config.device)


def close_encoder(encoder: Any) -> None:
    close = getattr(encoder, "close", None)
    if callable(close):
        close()


def encoder_device(encoder: Any) -> str:
    return str(getattr(encoder, "device", "cpu"))


async def encode_and_summarize(encoder: Any, batch: torch.Tensor) -> list[str]:
    """One encoder pass off the event loop; one text summary per image."""
    output = await encoder.encode_async(batch)
    return [str(s) for s in encoder.summarize(output)]


async def png_data_urls(batch: torch.Tensor) -> tuple[str, ...]:
    """Each image as a ``data:image/png;base64,...`` URL (encoded off the event loop)."""
    from ..encoder import image_to_png_base64

    def encode_all() -> tuple[str, ...]:
        return tuple(f"data:image/png;base64,{image_to_png_base64(image)}" for image in batch)

    return await asyncio.to_thread(encode_all)


# --- fallback -------------------------------------------------------------------------------
def cache_entries(fallback: FallbackManager[str]) -> int:
    return int(fallback.stats().cache_entries)
