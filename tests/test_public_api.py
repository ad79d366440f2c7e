"""The package's public surface: what ``__all__`` promises is exactly what is there."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import pixel_llm_otel

SUBPACKAGES = [
    "pixel_llm_otel",
    "pixel_llm_otel.client",
    "pixel_llm_otel.encoder",
    "pixel_llm_otel.errors",
    "pixel_llm_otel.monitoring",
    "pixel_llm_otel.pipeline",
    "pixel_llm_otel.resilience",
    "pixel_llm_otel.sim",
    "pixel_llm_otel.telemetry",
    "pixel_llm_otel.validation",
]


@pytest.mark.parametrize("module_name", SUBPACKAGES, ids=SUBPACKAGES)
def test_all_is_resolvable(module_name: str) -> None:
    """Every name in ``__all__`` resolves and none is listed twice (ruff's RUF022 keeps order)."""
    module = importlib.import_module(module_name)
    names = list(module.__all__)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(module, name) is not None, name


@pytest.mark.parametrize("module_name", SUBPACKAGES, ids=SUBPACKAGES)
def test_all_lists_every_public_name(module_name: str) -> None:
    """No public (non-underscore) object defined in a package escapes its ``__all__``."""
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith(module_name)
        and callable(value)
    }
    assert public <= exported, sorted(public - exported)


def test_import_is_light() -> None:
    """``import pixel_llm_otel`` imports neither torch nor the OpenTelemetry SDK."""
    code = (
        "import sys, pixel_llm_otel; "
        "print(sorted(m for m in ('torch', 'opentelemetry.sdk', 'aiohttp') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"


def test_lazy_names_load_on_access() -> None:
    """A lazily exported name is the same object as the one in its defining module."""
    from pixel_llm_otel.pipeline import HybridPixelLLM

    assert pixel_llm_otel.HybridPixelLLM is HybridPixelLLM
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = pixel_llm_otel.Nope  # type: ignore[attr-defined]


def test_builtin_compatible_exceptions() -> None:
    """Existing ``except ConnectionError/TimeoutError/ValueError`` clauses keep catching ours."""
    assert issubclass(pixel_llm_otel.ConnectionError, ConnectionError)
    assert issubclass(pixel_llm_otel.TimeoutError, TimeoutError)
    assert issubclass(pixel_llm_otel.ValidationError, ValueError)
