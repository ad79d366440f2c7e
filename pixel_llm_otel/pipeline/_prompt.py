"""Checking a call's arguments and building the chat messages for one caption."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._checks import MAX_TOKENS_LIMIT, check_max_tokens, check_temperature, to_seconds
from ..errors import ErrorCode, ValidationError
from ..validation import sanitize_input, validate_image_tensor

if TYPE_CHECKING:
    import torch

    from .config import CallDefaults

__all__ = [
    "DEFAULT_PROMPT",
    "MAX_TOKENS_LIMIT",
    "CallOptions",
    "build_messages",
    "check_call",
    "check_idle_timeout",
]

DEFAULT_PROMPT = "Describe this image in one or two sentences."


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOptions:
    """The checked per-call settings (``deadline``: seconds, ``None``: the configured one)."""

    prompt: str
    max_tokens: int
    temperature: float
    raise_on_failure: bool
    deadline: float | None = None


def check_call(
    defaults: CallDefaults,
    prompt: object = None,
    max_tokens: object = None,
    temperature: object = None,
    raise_on_failure: object = False,
    deadline: object = None,
    timeout: object = None,
) -> CallOptions:
    """Resolve defaults (``None`` only: 0 and 0.0 are honoured) and validate every argument.

    ``timeout`` is an alias of ``deadline`` (give one of them).
    """
    text = (
        DEFAULT_PROMPT
        if prompt is None
        else sanitize_input(prompt, name="prompt", max_chars=defaults.max_prompt_chars)
    )
    tokens = defaults.max_tokens
    if max_tokens is not None:
        tokens = check_max_tokens("max_tokens", max_tokens, code=ErrorCode.VALIDATION_RANGE)
    temp = defaults.temperature
    if temperature is not None:
        temp = check_temperature("temperature", temperature, code=ErrorCode.VALIDATION_RANGE)
    if not isinstance(raise_on_failure, bool):
        raise ValidationError(field="raise_on_failure", value=raise_on_failure, expected="a bool")
    seconds = None
    if deadline is not None and timeout is not None:
        raise ValidationError(
            field="timeout", value=timeout, expected="deadline or its alias timeout, not both"
        )
    if deadline is not None or timeout is not None:
        name = "deadline" if deadline is not None else "timeout"
        seconds = to_seconds(name, deadline if deadline is not None else timeout, positive=True)
    return CallOptions(
        prompt=text,
        max_tokens=tokens,
        temperature=temp,
        raise_on_failure=raise_on_failure,
        deadline=seconds,
    )


def check_idle_timeout(value: object) -> float | None:
    """A stream's ``idle_timeout``: seconds (or a timedelta) > 0, or ``None`` (the client's
    ``read_timeout``)."""
    return None if value is None else to_seconds("idle_timeout", value, positive=True)


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
