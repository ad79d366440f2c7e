"""Fuzz of constructor settings: hundreds of bad values across every field, only ValidationError.

Each case builds ``HybridPixelLLM`` against a live simulator with one bad setting (a flat keyword,
a section field, or a whole section). Every one must raise ``ValidationError`` at construction,
naming the field, with an expectation, never echoing a secret; and the simulator must see no
request at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pipeline_support import FakeEncoder

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.pipeline import HybridConfig, HybridPixelLLM
from pixel_llm_otel.sim.thread import SimulatorThread


@dataclass(frozen=True)
class Case:
    """One bad setting: the keywords to pass and the field the error must name."""

    id: str
    options: dict[str, Any]
    field: str
    secret: str | None = None  # must not appear in the error's text


class _Opaque:
    """An object of no accepted type."""


JUNK: list[tuple[str, object]] = [
    ("none", None),
    ("true", True),
    ("false", False),
    ("empty", ""),
    ("blank", "   "),
    ("neg-int", -1),
    ("zero", 0),
    ("float", 1.5),
    ("nan", math.nan),
    ("inf", math.inf),
    ("neg-inf", -math.inf),
    ("list", []),
    ("dict", {}),
    ("bytes", b"x"),
    ("complex", 1j),
    ("object", _Opaque()),
    ("huge", 10**30),
    ("str-number", "5"),
    ("nul", "a\x00b"),
    ("newline", "a\nb"),
    ("timedelta-neg", timedelta(seconds=-1)),
]

#: For each flat keyword: which junk values are acceptable (skipped) for it.
ACCEPTS: dict[str, set[str]] = {
    "lm_studio_model": {"str-number"},
    "device": set(),
    "encoder_type": set(),
    "encoder_config": {"none", "dict"},
    "max_tokens": {"zero", "huge"},
    "temperature": {"zero", "float"},
    "use_async": {"true", "false"},
    "cache_size": {"zero", "huge"},
    "error_config": {"none", "dict"},
    "api_key": {"none", "str-number"},
    "connect_timeout": {"float", "huge"},
    "read_timeout": {"float", "huge"},
    "total_timeout": {"float", "huge", "none"},  # None: no total limit
    "provider_name": {"str-number"},
    "send_image": {"true", "false"},
    "max_concurrency": {"huge"},
    "max_prompt_chars": {"huge"},
    "breaker_name": {"str-number"},
    "lm_studio_url": set(),
}

SECTIONS = {"client", "call", "encoder", "errors"}

BAD_URLS = [
    "localhost:1234",
    "ftp://localhost/v1",
    "file:///etc/passwd",
    "http://",
    "http:///v1",
    "https://:8080/v1",
    "http://user:hunter2@localhost:1234/v1",
    "http://user@localhost:1234/v1",
    "http://:hunter2@localhost/v1",
    "http://localhost:1234/v1?key=1",
    "http://localhost:1234/v1?",
    "http://localhost:1234/v1#frag",
    "http://localhost:99999/v1",
    "http://localhost:65536/v1",
    "http://localhost:0/v1",
    "http://localhost:-1/v1",
    "http://localhost:abc/v1",
    "http://localhost:12 34/v1",
    "http://[::1/v1",
    "http://::1]/v1",
    "http://[zz::1]/v1",
    "http://[::1]x/v1",
    "http://[12345::]/v1",
    "http://local host/v1",
    "http://localhost/v1\n",
    "http://localhost\r\n/v1",
    "http://local\x00host/v1",
    "http://localhost/v 1",
    "\thttp://",
    "//localhost/v1",
    "/v1",
    "javascript:alert(1)",
    "HTTP//localhost",
]

BAD_KEYS = [
    "",
    "sk-abc\r\nX-Injected: 1",
    "secret\nkey",
    "secret\rkey",
    "secret\x00key",
    "tab\tkey",
    "space key",
    "ключ-секрет",
    "key\x7f",
    "trailing ",
    " leading",
]

BAD_DEVICES = ["tpu", "cuda:", "cuda:-1", "CUDA", "cuda:1a", "cuda:\u0661", "gpu", "cpu ", "mps:0"]

SECTION_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("client-typo", {"client": {"base_ulr": "http://h/v1"}}, "client.base_ulr"),
    ("client-url", {"client": {"base_url": "http://h:99999/v1"}}, "client.base_url"),
    ("client-pool", {"client": {"pool_limit": 0}}, "client.pool_limit"),
    ("client-keepalive", {"client": {"keepalive_timeout": -1}}, "client.keepalive_timeout"),
    ("client-health", {"client": {"health_timeout": 0}}, "client.health_timeout"),
    ("client-agent", {"client": {"user_agent": "a\nb"}}, "client.user_agent"),
    ("client-trust", {"client": {"trust_env": "yes"}}, "client.trust_env"),
    ("client-errbody", {"client": {"max_error_body_bytes": 0}}, "client.max_error_body_bytes"),
    ("client-type", {"client": "http://h/v1"}, "client"),
    ("call-typo", {"call": {"modle": "m"}}, "call.modle"),
    ("call-model", {"call": {"model": ""}}, "call.model"),
    ("call-tokens", {"call": {"max_tokens": -3}}, "call.max_tokens"),
    ("call-temp", {"call": {"temperature": 9}}, "call.temperature"),
    ("call-type", {"call": 3}, "call"),
    ("encoder-kind", {"encoder": {"kind": "clip"}}, "encoder.kind"),
    ("encoder-device", {"encoder": {"device": "tpu"}}, "encoder.device"),
    ("encoder-arch", {"encoder": {"config": {"patch_size": 5}}}, "encoder.config.patch_size"),
    ("errors-typo", {"errors": {"retyr": {}}}, "errors.retyr"),
    ("errors-retry", {"errors": {"retry": {"max_attempts": 0}}}, "errors.retry"),
    ("errors-breaker", {"errors": {"circuit_breaker": {"cooldown": -1}}}, "errors.circuit_breaker"),
    ("errors-and-error-config", {"errors": {}, "error_config": {}}, "error_config"),
    ("unknown-keyword", {"lm_studio_ulr": "http://h/v1"}, "lm_studio_ulr"),
    ("encoder-config-key", {"encoder_config": {"image_sise": 64}}, "encoder_config.image_sise"),
    ("encoder-config-val", {"encoder_config": {"num_heads": 5}}, "encoder_config.num_heads"),
    ("retry-deadline", {"error_config": {"retry": {"deadline": 0}}}, "error_config.retry"),
    ("retry-delays", {"error_config": {"retry": {"max_delay": -1}}}, "error_config.retry"),
    ("fallback-order", {"error_config": {"fallback": {"order": ["psychic"]}}}, "error_config"),
]


def _cases() -> Iterator[Case]:
    for name, accepted in ACCEPTS.items():
        for junk_id, value in JUNK:
            if junk_id not in accepted:
                yield Case(f"{name}-{junk_id}", {name: value}, name)
    for i, url in enumerate(BAD_URLS):
        yield Case(f"url-{i}", {"lm_studio_url": url}, "lm_studio_url", secret="hunter2")
        yield Case(f"client-url-{i}", {"client": {"base_url": url}}, "client.base_url", "hunter2")
    for i, key in enumerate(BAD_KEYS):
        secret = key.strip() if len(key.strip()) > 3 else None
        yield Case(f"key-{i}", {"api_key": key}, "api_key", secret)
        yield Case(f"client-key-{i}", {"client": {"api_key": key}}, "client.api_key", secret)
    for device in BAD_DEVICES:
        yield Case(f"device-{device!r}", {"device": device}, "device")
    for name in ("max_tokens", "max_concurrency", "max_prompt_chars", "cache_size"):
        for value in (-(10**9), -2, 2.0, "10"):
            yield Case(f"{name}-{value!r}", {name: value}, name)
    for value in (-0.001, 2.0001, 100, "0.5"):
        yield Case(f"temperature-{value!r}", {"temperature": value}, "temperature")
    for name in ("connect_timeout", "read_timeout", "total_timeout"):
        for value in (0, 0.0, -0.5, timedelta(0), "1s"):
            yield Case(f"{name}-{value!r}", {name: value}, name)
    for case_id, options, field in SECTION_CASES:
        yield Case(case_id, options, field)


CASES = list(_cases())


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorThread]:
    """One simulator for the whole fuzz: it must never see a request."""
    with SimulatorThread(port=0, seed=3) as sim:
        yield sim


def test_the_fuzz_is_large() -> None:
    """Hundreds of bad settings, over every constructor keyword and every section."""
    assert len(CASES) >= 400
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.field.split(".")[0] for c in CASES} >= {*ACCEPTS, "client", "call", "encoder"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_setting_raises_validation_error_at_construction(
    server: SimulatorThread, case: Case
) -> None:
    """One bad setting: ValidationError naming the field and what was expected; nothing sent."""
    options = dict(case.options)
    if "lm_studio_url" not in options and "client" not in options:
        options["lm_studio_url"] = server.base_url
    with pytest.raises(ValidationError) as caught:
        if SECTIONS & set(options) or "lm_studio_ulr" in options:  # through a HybridConfig
            HybridPixelLLM.from_config(HybridConfig(**options), encoder=FakeEncoder()).close()
        else:
            HybridPixelLLM(encoder=FakeEncoder(), **options).close()
    error = caught.value
    assert error.field is not None
    assert error.field.startswith(case.field), error.field
    assert error.expected, str(error)
    if case.secret is not None:
        assert case.secret not in str(error)
        assert case.secret not in repr(error.to_dict())
    assert server.stats().total == 0
