"""Pytest fixtures for the observability stack (tests/_support/stack.py).

Use them from a conftest.py:

    from _support.stack_fixtures import *  # noqa: F403

Fixtures
    stack_binaries    session: {name: path} of otelcol, jaeger, prometheus, promtool, alertmanager;
                      skips when one is missing, or FAILS when CI=true (CI must run these tests)
    stack_factory     session: stack_factory(StackOptions(...), name="...") starts a Stack with
                      its logs in a session temp dir; all are stopped at session end
    stack             session: the default Stack (otelcol.yaml, canonical rules, 1 s intervals)
    fleet_factory     session: fleet_factory(FleetOptions(...), name="...") starts a two-tier
                      Fleet (tests/_support/fleet.py); all are stopped at session end
    alert_webhook     function: a WebhookReceiver to pass as StackOptions(alert_webhook_url=...)

When a test that used a stack fails, the tail of every stack process's log is added to its report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from .clients import WebhookReceiver
from .fleet import Fleet, FleetOptions
from .procs import BinaryMissing, find_binary, require_binary
from .stack import Stack, StackOptions

__all__ = [
    "alert_webhook",
    "fleet_factory",
    "pytest_runtest_makereport",
    "require_stack_binaries",
    "stack",
    "stack_binaries",
    "stack_factory",
]

STACK_PROGRAMS = ("otelcol", "jaeger", "prometheus", "promtool", "alertmanager")
_ACTIVE: list[Stack | Fleet] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_stack_binaries(*names: str) -> dict[str, Path]:
    """Paths of the named programs; skip the test if one is missing (fail instead when CI=true)."""
    missing = [n for n in names if find_binary(n) is None]
    if missing:
        reason = (
            f"stack programs missing: {', '.join(missing)}; "
            "run `make stack-build` (scripts/build-stack.sh)"
        )
        if in_ci():
            pytest.fail(f"{reason} -- CI=true, so this is a failure, not a skip", pytrace=False)
        pytest.skip(reason)
    try:
        return {n: require_binary(n) for n in names}
    except BinaryMissing as exc:  # pragma: no cover (raced with a deletion)
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def stack_binaries() -> dict[str, Path]:
    """All stack programs (skip / CI-fail when missing)."""
    return require_stack_binaries(*STACK_PROGRAMS)


@pytest.fixture(scope="session")
def stack_factory(
    stack_binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Stack]]:
    """Start stacks on demand; each gets its own log directory; all stop at session end."""
    started: list[Stack] = []

    def start(options: StackOptions | None = None, name: str = "stack") -> Stack:
        workdir = tmp_path_factory.mktemp(name)
        stack = Stack(options or StackOptions(), workdir)
        stack.start()  # raises StackError with the logs' tails if a process fails
        started.append(stack)
        _ACTIVE.append(stack)
        return stack

    yield start
    for stack in reversed(started):
        stack.stop()
        _ACTIVE.remove(stack)


@pytest.fixture(scope="session")
def fleet_factory(
    stack_binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Fleet]]:
    """Start two-tier fleets on demand, like stack_factory; all stop at session end."""
    started: list[Fleet] = []

    def start(options: FleetOptions | None = None, name: str = "fleet") -> Fleet:
        fleet = Fleet(options or FleetOptions(), tmp_path_factory.mktemp(name))
        fleet.start()
        started.append(fleet)
        _ACTIVE.append(fleet)
        return fleet

    yield start
    for fleet in reversed(started):
        fleet.stop()
        _ACTIVE.remove(fleet)


@pytest.fixture(scope="session")
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    """The default stack: collector (otelcol.yaml), Jaeger, Prometheus, Alertmanager."""
    return stack_factory(StackOptions(), name="stack")


@pytest.fixture
def alert_webhook() -> Iterator[WebhookReceiver]:
    """An HTTP server recording Alertmanager's webhook notifications."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Attach the stack processes' log tails to the report of a failed test that used a stack."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    used = set(getattr(item, "fixturenames", ()))
    if report.failed and _ACTIVE and used & {"stack_factory", "fleet_factory"}:
        for i, active in enumerate(_ACTIVE):
            report.sections.append((f"stack logs ({i}: {active.workdir})", active.describe()))
