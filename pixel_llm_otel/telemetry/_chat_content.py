"""Content of a finished chat operation: span attributes, the details event, the upload hook.

Called by the chat scope once, at its end, only for a recording (sampled) span and only when the
content policy asks for something: an unsampled or uncaptured call builds no JSON at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span

from ..hooks import ChatRequestInfo, ChatResponseInfo
from ._messages import build_content

if TYPE_CHECKING:
    from ._observer import OTelObserver

__all__ = ["record_content"]


def record_content(
    obs: OTelObserver,
    span: Span,
    operation: Mapping[str, Any],
    request: ChatRequestInfo,
    response: ChatResponseInfo | None,
) -> None:
    """Write the chat's content where ``obs.content`` says; ``operation``: its attributes."""
    policy = obs.content
    hook = policy.hook
    content = build_content(
        policy,
        request.messages,
        response.output_text if response is not None else None,
        response.finish_reasons if response is not None else (),
        full=hook is not None,
    )
    values: dict[str, Any] = content.json() if policy.mode is not policy.mode.NO_CONTENT else {}
    refs: dict[str, str] = {}
    if hook is not None and content.full is not None:
        refs = hook.upload(span, content.full)
    mode = policy.mode
    if (mode.on_span and values) or refs:
        span.set_attributes({**values, **refs} if mode.on_span else refs)
    if mode.on_event:
        obs.events.operation_details(span, {**operation, **values, **refs})
