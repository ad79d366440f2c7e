"""Fixtures of the adversarial suite: the hostile server, pipelines built against it, an image."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import torch
from hostile import HostileServer


@pytest.fixture(scope="session")
def hostile() -> Iterator[HostileServer]:
    """One hostile server for the whole session (scenarios are picked by URL path)."""
    with HostileServer() as server:
        yield server


@pytest.fixture
def image() -> torch.Tensor:
    """One small CHW image in 0..1 (seeded)."""
    return torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3))


@pytest.fixture
def log_stream() -> io.StringIO:
    """Where the pipelines' JSON log lines go (kept off stderr)."""
    return io.StringIO()
