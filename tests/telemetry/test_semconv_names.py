"""Every gen_ai./server./error./http. name we emit exists in opentelemetry-semantic-conventions."""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import pkgutil

import opentelemetry.semconv._incubating.attributes as incubating
import opentelemetry.semconv._incubating.metrics as incubating_metrics
import opentelemetry.semconv.attributes as stable
import pytest
from otel_support import REQUEST, RESPONSE, Captured

from pixel_llm_otel.errors import RetryExhausted
from pixel_llm_otel.resilience import GLOBAL_BUS, FallbackInvoked, RetryAttempt
from pixel_llm_otel.telemetry import _names

PREFIXES = ("gen_ai.", "server.", "error.", "http.")


def _semconv_strings(*packages: object) -> set[str]:
    """Every string constant defined in the semconv attribute (and metric) modules."""
    values: set[str] = set()
    for package in packages:
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):  # type: ignore[attr-defined]
            module = importlib.import_module(info.name)
            values.update(v for v in vars(module).values() if isinstance(v, str))
    return values


SEMCONV = _semconv_strings(stable, incubating, incubating_metrics)


def _emitted(cap: Captured) -> set[str]:
    names: set[str] = set()
    for span in cap.spans():
        names.update((span.attributes or {}).keys())
        for event in span.events:
            names.update((event.attributes or {}).keys())
    data = cap.reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name.startswith("gen_ai."):
                    names.add(metric.name)
                for point in metric.data.data_points:
                    names.update(point.attributes.keys())
    return names


def test_semconv_lookup_is_not_vacuous() -> None:
    """The scan finds known names and rejects made-up ones."""
    assert {"gen_ai.provider.name", "http.request.resend_count", "error.type"} <= SEMCONV
    assert "gen_ai.made_up.attribute" not in SEMCONV


def test_every_emitted_semconv_name_exists() -> None:
    """A full story's span, event and metric attribute names under our prefixes are semconv."""
    from otel_support import make_captured

    cap = make_captured(instrument_http=False, capture_content=True)
    obs = cap.observer
    with obs.generate(model="m", batch_size=1, provider="lm_studio") as g:
        with obs.chat(REQUEST) as c:
            GLOBAL_BUS.emit(
                RetryAttempt(
                    name="llm",
                    attempt=1,
                    delay=0.1,
                    error_type="TimeoutError",
                    error_code="ERR_TIMEOUT_READ",
                    error=TimeoutError(),
                )
            )
            c.response(RESPONSE)
        with obs.chat(REQUEST) as c:
            c.fail(RetryExhausted(attempts=1, last_error=TimeoutError()))
        GLOBAL_BUS.emit(
            FallbackInvoked(
                strategy="cache",
                result="served",
                error_type="RetryExhausted",
                error_code="ERR_RETRY_EXHAUSTED",
            )
        )
        g.finish(outcome="fallback", attempts=2, fallback_strategy="cache")
    ours = {name for name in _emitted(cap) if name.startswith(PREFIXES)}
    assert {"gen_ai.input.messages", "gen_ai.token.type", "server.port", "error.type"} <= ours
    assert sorted(ours - SEMCONV) == []


@pytest.mark.parametrize(
    "name",
    sorted(
        v
        for k, v in vars(_names).items()
        if k.isupper() and isinstance(v, str) and v.startswith(PREFIXES)
    ),
)
def test_every_declared_semconv_name_exists(name: str) -> None:
    """Each semconv-prefixed constant in _names is a semconv name, or declared ahead of it."""
    assert name in SEMCONV or name in _names.REFERENCE_NAMES | _names.COMING_NAMES


def _reference_source() -> str:
    spec = importlib.util.find_spec("opentelemetry.util.genai")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("opentelemetry-util-genai (the reference implementation) is not installed")
    root = pathlib.Path(next(iter(spec.submodule_search_locations)))
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.py")))


@pytest.mark.parametrize("name", sorted(_names.REFERENCE_NAMES))
def test_names_ahead_of_semconv_are_the_references(name: str) -> None:
    """A name the semconv package lacks is spelled exactly as opentelemetry-util-genai spells it."""
    assert name not in SEMCONV  # else it belongs in the plain check
    source = _reference_source()
    if name.endswith("_ref"):  # the reference builds them: a semconv name + "_ref"
        assert name.removesuffix("_ref") in SEMCONV
        assert '+ "_ref"' in source
    else:
        assert f'"{name}"' in source


def test_coming_names_are_not_released_names() -> None:
    """The opt-in names are all new: none collides with a released semconv name."""
    assert not _names.COMING_NAMES & SEMCONV
    assert all(m.startswith("gen_ai.client.") for m in _names.COMING_NAMES)
