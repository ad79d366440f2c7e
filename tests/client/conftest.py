"""Fixtures of the client tests: the loopback stub server and a refused port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from client_support import StubServer


@pytest.fixture(scope="session")
def _stub_server() -> Iterator[StubServer]:
    server = StubServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(_stub_server: StubServer) -> Iterator[StubServer]:
    """The loopback stub server, cleared for this test."""
    _stub_server.reset()
    yield _stub_server
    _stub_server.reset()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL whose port is bound but not listening: connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1"
    sock.close()
