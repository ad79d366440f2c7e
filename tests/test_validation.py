"""validation.py: tensors, image tensors, configuration objects and prompt text."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import pytest

from pixel_llm_otel.errors import ErrorCode, ValidationError
from pixel_llm_otel.resilience.circuit_breaker import CircuitBreakerConfig
from pixel_llm_otel.resilience.fallback import FallbackConfig
from pixel_llm_otel.resilience.retry import RetryConfig
from pixel_llm_otel.validation import (
    sanitize_input,
    validate_config,
    validate_image_tensor,
    validate_tensor,
)

torch = pytest.importorskip("torch")


def _fails(fn: Callable[[], object], code: ErrorCode) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        fn()
    assert info.value.code is code, str(info.value)
    return info.value


# --- validate_tensor ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "spec"),
    [
        ((2, 3), (2, 3)),
        ((2, 3), (None, 3)),
        ((2, 3), (-1, "*")),
        ((2, 3), ("...", 3)),
        ((5, 2, 3), ("...", 3)),
        ((3,), ("...", 3)),
        ((4, 1, 3), (4, ..., 3)),
    ],
    ids=[
        "exact",
        "none",
        "minus-one-star",
        "ellipsis-2d",
        "ellipsis-3d",
        "ellipsis-empty",
        "ellipsis-middle",
    ],
)
def test_shape_wildcards_accept(shape: tuple[int, ...], spec: tuple[object, ...]) -> None:
    """None, -1 and '*' match one dimension; '...' (or Ellipsis) matches any number."""
    t = torch.zeros(shape)
    assert validate_tensor(t, shape=spec) is t  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "spec"),
    [((2, 3), (2, 4)), ((2, 3), (2,)), ((2, 3), ("...", 2, 2, 3)), ((2, 3, 1), (None, 3))],
    ids=["size", "rank-short", "ellipsis-too-few", "rank-long"],
)
def test_shape_mismatch_names_actual_and_expected(
    shape: tuple[int, ...], spec: tuple[object, ...]
) -> None:
    """A wrong shape raises ERR_VALIDATION_SHAPE naming both shapes."""
    err = _fails(
        lambda: validate_tensor(torch.zeros(shape), name="x", shape=spec),  # type: ignore[arg-type]
        ErrorCode.VALIDATION_SHAPE,
    )
    assert err.field == "x"
    assert str(shape) in str(err)


@pytest.mark.parametrize(
    "spec",
    [("...", "...", 3), (2, "two"), (2, -2), (True, 3)],
    ids=["two-ellipses", "word", "negative", "bool"],
)
def test_bad_shape_spec_is_a_validation_error(spec: tuple[object, ...]) -> None:
    """A malformed shape argument is reported as the 'shape' field, not a TypeError."""
    err = _fails(
        lambda: validate_tensor(torch.zeros(2, 3), shape=spec),  # type: ignore[arg-type]
        ErrorCode.VALIDATION_TYPE,
    )
    assert err.field == "shape"


def test_not_a_tensor() -> None:
    """A list is rejected with ERR_VALIDATION_TYPE naming the field."""
    err = _fails(lambda: validate_tensor([1.0], name="features"), ErrorCode.VALIDATION_TYPE)
    assert "features: got [1.0], expected a torch.Tensor" in str(err)


def test_dtype_one_or_several() -> None:
    """dtype accepts one dtype or several; a mismatch names the dtypes."""
    t = torch.zeros(2, dtype=torch.float16)
    assert validate_tensor(t, dtype=(torch.float32, torch.float16)) is t
    err = _fails(lambda: validate_tensor(t, dtype=torch.float32), ErrorCode.VALIDATION_DTYPE)
    assert "torch.float16" in str(err)
    assert "torch.float32" in str(err)
    _fails(lambda: validate_tensor(t, dtype=["float32"]), ErrorCode.VALIDATION_TYPE)  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("values", "value_range", "ok"),
    [
        ([0.0, 1.0], (0.0, 1.0), True),
        ([-0.1, 0.5], (0.0, 1.0), False),
        ([0.5, 1.1], (0.0, 1.0), False),
        ([5.0, 9.0], (None, 10.0), True),
        ([-5.0], (0.0, None), False),
    ],
    ids=["inside", "below", "above", "open-low", "open-high"],
)
def test_value_range(
    values: list[float], value_range: tuple[float | None, float | None], ok: bool
) -> None:
    """Values outside the inclusive range raise ERR_VALIDATION_RANGE with min and max seen."""
    t = torch.tensor(values)
    if ok:
        assert validate_tensor(t, value_range=value_range) is t
    else:
        err = _fails(
            lambda: validate_tensor(t, value_range=value_range), ErrorCode.VALIDATION_RANGE
        )
        assert "min" in str(err)


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"]
)
def test_non_finite_values(bad: float) -> None:
    """NaN/inf raise ERR_VALIDATION_NONFINITE unless finite=False."""
    t = torch.tensor([0.5, bad])
    err = _fails(lambda: validate_tensor(t), ErrorCode.VALIDATION_NONFINITE)
    assert "1 NaN or infinite" in str(err)
    assert validate_tensor(t, finite=False) is t


def test_integer_tensors_skip_the_finite_check_and_empty_tensors_pass() -> None:
    """Integer tensors are always finite; empty tensors have no values to check."""
    assert validate_tensor(torch.arange(3), value_range=(0, 2)) is not None
    assert validate_tensor(torch.zeros(0, 3), value_range=(1, 2)).shape == (0, 3)


def test_device() -> None:
    """device='cpu' accepts a CPU tensor; 'cuda' rejects it; a bogus device is named."""
    t = torch.zeros(2)
    assert validate_tensor(t, device="cpu") is t
    assert validate_tensor(t, device=torch.device("cpu")) is t
    err = _fails(lambda: validate_tensor(t, device="cuda:1"), ErrorCode.VALIDATION_DEVICE)
    assert "cuda:1" in str(err)
    bogus = _fails(lambda: validate_tensor(t, device="gpu9"), ErrorCode.VALIDATION_DEVICE)
    assert bogus.field == "device"


def test_a_huge_tensor_is_described_not_printed() -> None:
    """Messages describe tensors by shape and dtype only."""
    err = _fails(
        lambda: validate_tensor(torch.zeros(512, 512), shape=(3,)), ErrorCode.VALIDATION_SHAPE
    )
    assert "Tensor(shape=(512, 512), dtype=torch.float32)" in str(err)
    assert len(str(err)) < 300


# --- validate_image_tensor ----------------------------------------------------------------
@pytest.mark.parametrize(
    "shape", [(3, 32, 32), (1, 3, 32, 32), (4, 3, 16, 24)], ids=["chw", "bchw-1", "bchw-4"]
)
def test_image_layouts_accepted(shape: tuple[int, ...]) -> None:
    """CHW and BCHW float images in 0..1 are returned unchanged."""
    t = torch.rand(shape)
    assert validate_image_tensor(t) is t


@pytest.mark.parametrize(
    ("value", "kwargs", "code"),
    [
        (lambda: [[0.0]], {}, ErrorCode.VALIDATION_TYPE),
        (lambda: torch.zeros(3, 8, 8, dtype=torch.uint8), {}, ErrorCode.VALIDATION_DTYPE),
        (lambda: torch.zeros(3, 8, 8, dtype=torch.int64), {}, ErrorCode.VALIDATION_DTYPE),
        (lambda: torch.rand(8, 8), {}, ErrorCode.VALIDATION_SHAPE),
        (lambda: torch.rand(1, 1, 3, 8, 8), {}, ErrorCode.VALIDATION_SHAPE),
        (lambda: torch.rand(1, 8, 8), {}, ErrorCode.VALIDATION_SHAPE),
        (lambda: torch.rand(8, 8, 3), {}, ErrorCode.VALIDATION_SHAPE),
        (lambda: torch.rand(0, 3, 8, 8), {}, ErrorCode.VALIDATION_SHAPE),
        (lambda: torch.rand(3, 0, 8), {}, ErrorCode.VALIDATION_SHAPE),
        (lambda: torch.rand(2, 3, 8, 8), {"allow_batch": False}, ErrorCode.VALIDATION_SHAPE),
        (lambda: torch.rand(3, 8, 8), {"expected_size": (16, 16)}, ErrorCode.VALIDATION_SHAPE),
        (lambda: torch.full((3, 8, 8), 2.0), {}, ErrorCode.VALIDATION_RANGE),
        (lambda: torch.full((3, 8, 8), float("nan")), {}, ErrorCode.VALIDATION_NONFINITE),
    ],
    ids=[
        "list",
        "uint8",
        "int64",
        "2d",
        "5d",
        "1-channel",
        "hwc",
        "empty-batch",
        "zero-height",
        "batch-not-allowed",
        "wrong-size",
        "0-255-floats",
        "nan",
    ],
)
def test_bad_images(
    value: Callable[[], object], kwargs: dict[str, object], code: ErrorCode
) -> None:
    """Each way an image can be wrong has its own code and names the 'images' field."""
    err = _fails(lambda: validate_image_tensor(value(), **kwargs), code)  # type: ignore[arg-type]
    assert err.field == "images"


def test_uint8_message_suggests_the_conversion() -> None:
    """uint8 images are rejected with the exact conversion to use."""
    err = _fails(
        lambda: validate_image_tensor(torch.zeros(3, 8, 8, dtype=torch.uint8)),
        ErrorCode.VALIDATION_DTYPE,
    )
    assert ".float() / 255" in str(err)


def test_expected_size_checks_height_and_width() -> None:
    """expected_size=(H, W) accepts exactly that size."""
    t = torch.rand(2, 3, 16, 24)
    assert validate_image_tensor(t, expected_size=(16, 24)) is t
    _fails(lambda: validate_image_tensor(t, expected_size=(24, 16)), ErrorCode.VALIDATION_SHAPE)


# --- validate_config ----------------------------------------------------------------------


@dataclass(frozen=True)
class Inner:
    """A nested configuration."""

    depth: int = 1


@dataclass(frozen=True)
class Outer:
    """A configuration with every supported field type."""

    name: str
    count: int = 1
    ratio: float = 0.5
    flag: bool = False
    wait: float | timedelta | None = None
    order: tuple[str, ...] = ("a", "b")
    pair: tuple[int, str] = (1, "x")
    mode: Literal["fast", "slow"] = "fast"
    hook: Callable[[int], int] | None = None
    errors: tuple[type[BaseException], ...] = (ValueError,)
    labels: dict[str, int] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValidationError(
                field="count",
                value=self.count,
                expected="an int >= 0",
                code=ErrorCode.VALIDATION_RANGE,
            )
        if self.ratio > 1:
            raise ValueError("ratio must be <= 1")


def test_config_from_a_mapping_with_nested_dataclass_and_lists() -> None:
    """Nested mappings become dataclasses and lists become tuples for tuple fields."""
    cfg = validate_config(
        Outer,
        {
            "name": "n",
            "count": 2,
            "ratio": 1,
            "flag": True,
            "wait": timedelta(seconds=3),
            "order": ["x"],
            "pair": [2, "y"],
            "mode": "slow",
            "hook": abs,
            "errors": [KeyError],
            "labels": {"a": 1},
            "inner": {"depth": 4},
        },
    )
    assert cfg.inner == Inner(depth=4)
    assert cfg.order == ("x",)
    assert cfg.pair == (2, "y")
    assert cfg.errors == (KeyError,)


def test_an_instance_is_checked_and_returned() -> None:
    """A ready instance passes through unchanged; a bad field in it is still reported."""
    cfg = Outer(name="n")
    assert validate_config(Outer, cfg) is cfg
    err = _fails(
        lambda: validate_config(Outer, Outer(name=3)),  # type: ignore[arg-type]
        ErrorCode.VALIDATION_CONFIG,
    )
    assert err.field == "Outer.name"


def test_unknown_key_suggests_the_closest_and_lists_known_keys() -> None:
    """A misspelt key gets 'did you mean' and the list of known keys."""
    err = _fails(
        lambda: validate_config(Outer, {"name": "n", "cuont": 1}), ErrorCode.VALIDATION_CONFIG
    )
    assert err.field == "Outer.cuont"
    assert "did you mean 'count'?" in str(err)
    assert "known keys: count, errors, flag, hook, inner" in str(err)


@pytest.mark.parametrize(
    ("data", "field_name", "expected"),
    [
        ({"name": "n", "count": "3"}, "Outer.count", "int"),
        ({"name": "n", "count": True}, "Outer.count", "int"),
        ({"name": "n", "flag": 1}, "Outer.flag", "bool"),
        ({"name": "n", "ratio": "0.5"}, "Outer.ratio", "float"),
        ({"name": "n", "wait": "3s"}, "Outer.wait", "float | timedelta | None"),
        ({"name": "n", "order": "abc"}, "Outer.order", "tuple[str, ...]"),
        ({"name": "n", "pair": [1]}, "Outer.pair", "tuple[int, str]"),
        ({"name": "n", "mode": "warp"}, "Outer.mode", "'fast' | 'slow'"),
        ({"name": "n", "hook": 3}, "Outer.hook", "a callable | None"),
        ({"name": "n", "errors": [int]}, "Outer.errors", "tuple[type[BaseException], ...]"),
        ({"name": "n", "labels": {"a": "1"}}, "Outer.labels", "dict[str, int]"),
        ({"name": "n", "inner": {"depth": "deep"}}, "Outer.inner.depth", "int"),
        ({"name": "n", "inner": 5}, "Outer.inner", "a Inner or a mapping of its fields"),
    ],
    ids=[
        "int-str",
        "int-bool",
        "bool-int",
        "float-str",
        "union",
        "tuple-str",
        "tuple-len",
        "literal",
        "callable",
        "type",
        "dict-values",
        "nested-field",
        "nested-type",
    ],
)
def test_wrong_types_name_the_field_and_the_expected_type(
    data: dict[str, object], field_name: str, expected: str
) -> None:
    """Each type mismatch names the dotted field path and the expected type."""
    err = _fails(lambda: validate_config(Outer, data), ErrorCode.VALIDATION_CONFIG)
    assert err.field == field_name
    assert err.expected == expected


def test_out_of_range_from_post_init_becomes_a_config_error() -> None:
    """The dataclass's own checks surface as ERR_VALIDATION_CONFIG naming the field."""
    err = _fails(
        lambda: validate_config(Outer, {"name": "n", "count": -1}), ErrorCode.VALIDATION_CONFIG
    )
    assert err.field == "Outer.count"
    assert isinstance(err.__cause__, ValidationError)
    plain = _fails(
        lambda: validate_config(Outer, {"name": "n", "ratio": 2.0}), ErrorCode.VALIDATION_CONFIG
    )
    assert "ratio must be <= 1" in str(plain)


def test_missing_required_field_and_bad_inputs() -> None:
    """A missing required field, a non-mapping and a non-dataclass are all named."""
    assert _fails(lambda: validate_config(Outer, {}), ErrorCode.VALIDATION_CONFIG).field == (
        "Outer.name"
    )
    assert (
        _fails(lambda: validate_config(Outer, [("name", "n")]), ErrorCode.VALIDATION_CONFIG).field
        == "Outer"
    )
    assert (
        _fails(lambda: validate_config(dict, {}), ErrorCode.VALIDATION_CONFIG).field == "config_cls"
    )
    assert (
        _fails(
            lambda: validate_config(Outer, {"name": "n", 1: 2}),  # type: ignore[dict-item]
            ErrorCode.VALIDATION_CONFIG,
        ).field
        == "Outer"
    )


def test_name_prefixes_field_paths() -> None:
    """name= replaces the class name in field paths (e.g. the key in a YAML file)."""
    err = _fails(
        lambda: validate_config(Outer, {"name": 1}, name="pipeline.outer"),
        ErrorCode.VALIDATION_CONFIG,
    )
    assert err.field == "pipeline.outer.name"


@pytest.mark.parametrize(
    ("cls", "data", "field_name"),
    [
        (RetryConfig, {"max_attempts": 0}, "RetryConfig.max_attempts"),
        (RetryConfig, {"initial_delay": "fast"}, "RetryConfig.initial_delay"),
        (RetryConfig, {"retry_on": [ValueError, "x"]}, "RetryConfig.retry_on"),
        (RetryConfig, {"max_attemps": 2}, "RetryConfig.max_attemps"),
        (
            CircuitBreakerConfig,
            {"failure_rate_threshold": 1.5},
            "CircuitBreakerConfig.failure_rate_threshold",
        ),
        (CircuitBreakerConfig, {"cooldown": -1}, "CircuitBreakerConfig.cooldown"),
        (FallbackConfig, {"order": ["cache", "stale"]}, "FallbackConfig.order"),
        (FallbackConfig, {"cache_max_entries": "many"}, "FallbackConfig.cache_max_entries"),
        (FallbackConfig, {"custom": "not callable"}, "FallbackConfig.custom"),
    ],
    ids=[
        "retry-range",
        "retry-type",
        "retry-on",
        "retry-typo",
        "breaker-rate",
        "breaker-cooldown",
        "fallback-order",
        "fallback-entries",
        "fallback-custom",
    ],
)
def test_the_packages_own_configs(cls: type, data: dict[str, object], field_name: str) -> None:
    """RetryConfig, CircuitBreakerConfig and FallbackConfig are validated with named fields."""
    assert _fails(lambda: validate_config(cls, data), ErrorCode.VALIDATION_CONFIG).field == (
        field_name
    )


def test_the_packages_configs_build_from_yaml_like_data() -> None:
    """Lists and timedeltas from a config file build a working RetryConfig."""
    cfg = validate_config(
        RetryConfig,
        {"max_attempts": 5, "deadline": timedelta(seconds=30), "retry_on": [TimeoutError]},
    )
    assert cfg.max_attempts == 5
    assert cfg.retry_on == (TimeoutError,)


# --- sanitize_input -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Describe this image.", "Describe this image."),
        ("line1\r\nline2\rline3", "line1\nline2\nline3"),
        ("tab\tkept\nnewline kept", "tab\tkept\nnewline kept"),
        ("bell\x07 esc\x1b[31m del\x7f c1\x85", "bell esc[31m del c1"),
        ("e\u0301", "\u00e9"),
        ("", ""),
    ],
    ids=["plain", "newlines", "tab-newline", "controls", "nfc", "empty"],
)
def test_sanitize_cleans(text: str, expected: str) -> None:
    """Control characters go, line endings become \\n, text is NFC-normalised."""
    assert sanitize_input(text) == expected


@pytest.mark.parametrize(
    ("text", "kwargs", "fragment"),
    [
        (b"bytes", {}, "expected a str"),
        (None, {}, "expected a str"),
        ("a\x00b", {}, "NUL character at index 1"),
        ("x" * 11, {"max_chars": 10}, "11 characters, expected at most 10"),
        ("ok\ud800", {}, "unpaired surrogate"),
    ],
    ids=["bytes", "none", "nul", "too-long", "surrogate"],
)
def test_sanitize_rejects(text: object, kwargs: dict[str, object], fragment: str) -> None:
    """Bad prompts raise ERR_VALIDATION_PROMPT explaining why."""
    err = _fails(lambda: sanitize_input(text, **kwargs), ErrorCode.VALIDATION_PROMPT)  # type: ignore[arg-type]
    assert fragment in str(err)
    assert err.field == "prompt"


def test_sanitize_options() -> None:
    """normalize=None keeps decomposed text; NFKC folds compatibility forms; bad options fail."""
    assert sanitize_input("e\u0301", normalize=None) == "e\u0301"
    assert sanitize_input("\ufb01", normalize="NFKC") == "fi"
    assert sanitize_input("x" * 10_000, max_chars=None) == "x" * 10_000
    assert (
        _fails(lambda: sanitize_input("x", normalize="NFX"), ErrorCode.VALIDATION_TYPE).field
        == "normalize"
    )
    assert (
        _fails(lambda: sanitize_input("x", max_chars=0), ErrorCode.VALIDATION_TYPE).field
        == "max_chars"
    )


def test_long_prompt_is_not_echoed_in_the_error() -> None:
    """A too-long prompt is described by its length, never copied into the error."""
    err = _fails(lambda: sanitize_input("secret " * 2000), ErrorCode.VALIDATION_PROMPT)
    assert "secret" not in str(err)


def test_importing_validation_does_not_import_torch() -> None:
    """validation.py imports torch lazily, so importing the package stays light."""
    import subprocess

    code = (
        "import sys, pixel_llm_otel.validation, pixel_llm_otel.monitoring; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
