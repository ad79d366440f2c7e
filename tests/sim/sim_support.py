"""Helpers shared by the simulator tests (pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

CHAT = "/chat/completions"


def chat_body(text: str = "describe the image", **extra: Any) -> dict[str, Any]:
    """A minimal valid chat-completions request body."""
    return {"model": "sim-model", "messages": [{"role": "user", "content": text}], **extra}


async def wait_for(condition: Callable[[], bool], *, timeout: float = 2.0) -> None:
    """Poll ``condition`` every few ms until true; fail after ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)
