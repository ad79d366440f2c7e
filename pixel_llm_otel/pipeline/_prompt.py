"""Checking a call's arguments and building the chat messages for one caption."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, ValidationError
from ..validation import sanitize_input, validate_image_tensor

if TYPE_CHECKING:
    import torch

    from .config import HybridConfig

__all__ = ["DEFAULT_PROMPT", "CallOptions", "build_messages", "check_call"]

DEFAULT_PROMPT = "Describe this image in one or two sentences."
#: The largest ``max_tokens`` sent (a signed 32-bit int: what servers parse it into).
MAX_TOKENS_LIMIT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class CallOptions:
    """The checked per-call settings."""

    prompt: str
    max_tokens: int
    temperature: float
    raise_on_failure: bool


def check_call(
    config: HybridConfig,
    prompt: object,
    max_tokens: object,
    temperature: object,
    raise_on_failure: object,
) -> CallOptions:
    """Resolve defaults (``None`` only: 0 and 0.0 are honoured) and validate every argument."""
    text = (
        DEFAULT_PROMPT
        if prompt is None
        else sanitize_input(prompt, name="prompt", max_chars=config.max_prompt_chars)
    )
    tokens = _token_count(config.max_tokens if max_tokens is None else max_tokens)
    if tokens is None:
        raise ValidationError(
            field="max_tokens",
            value=max_tokens,
            expected=f"an int in [0, {MAX_TOKENS_LIMIT}] or None",
            code=ErrorCode.VALIDATION_RANGE,
        )
    temp = _temperature(config.temperature if temperature is None else temperature)
    if temp is None:
        raise ValidationError(
            field="temperature",
            value=temperature,
            expected="a number in [0, 2] or None",
            code=ErrorCode.VALIDATION_RANGE,
        )
    if not isinstance(raise_on_failure, bool):
        raise ValidationError(field="raise_on_failure", value=raise_on_failure, expected="a bool")
    return CallOptions(text, tokens, temp, raise_on_failure)


def _token_count(value: object) -> int | None:
    """``value`` as a plain int if it is an ``int`` (not ``bool``) in ``[0, MAX_TOKENS_LIMIT]``."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    number = int.__index__(value)  # a plain int, whatever a subclass overrides
    return number if 0 <= number <= MAX_TOKENS_LIMIT else None


def _temperature(value: object) -> float | None:
    """``value`` as a float if it is a finite real number in ``[0, 2]``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    plain = int.__index__(value) if isinstance(value, int) else float.__float__(value)
    try:
        number = float(plain)  # a plain number, whatever a subclass overrides
    except OverflowError:  # an int too large for a float (10**400)
        return None
    return number if math.isfinite(number) and 0.0 <= number <= 2.0 else None


def check_images(images: object, *, name: str = "images") -> torch.Tensor:
    """A validated BCHW float tensor (a CHW image gets a batch dimension of 1)."""
    tensor = validate_image_tensor(images, name=name)
    return tensor.unsqueeze(0) if tensor.ndim == 3 else tensor


def build_messages(
    prompt: str, summary: str, image_urls: tuple[str, ...] = ()
) -> list[Mapping[str, Any]]:
    """One user message: the prompt and the feature summary, plus ``image_url`` parts."""
    text = f"{prompt}\n\nVisual features from the image encoder: {summary}"
    if not image_urls:
        return [{"role": "user", "content": text}]
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts.extend({"type": "image_url", "image_url": {"url": url}} for url in image_urls)
    return [{"role": "user", "content": parts}]
