"""Fixtures for tests that run the observability stack's real programs (see tests/_support/)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # `_support` lives in tests/, whatever pytest's import mode
    sys.path.insert(0, _TESTS)

from _support.stack_fixtures import *  # noqa: E402, F403
