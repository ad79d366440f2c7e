"""validation.py against every layout and dtype torch can construct: ValidationError, never a
torch error."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest

from pixel_llm_otel.errors import ErrorCode, ValidationError
from pixel_llm_otel.validation import (
    MAX_IMAGE_SIDE,
    sanitize_input,
    validate_image_tensor,
    validate_tensor,
)

torch = pytest.importorskip("torch")

IMAGE_DTYPES = {torch.float32, torch.float16, torch.bfloat16, torch.float64}
ALL_DTYPES = sorted({v for v in vars(torch).values() if isinstance(v, torch.dtype)}, key=str)
ALL_LAYOUTS = sorted({v for v in vars(torch).values() if isinstance(v, torch.layout)}, key=str)


def _make(dtype: torch.dtype, shape: tuple[int, ...] = (3, 4, 4)) -> torch.Tensor | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for build in (torch.zeros, torch.empty):
            try:
                return build(shape, dtype=dtype)
            except Exception:
                continue
    return None


def _checks(t: torch.Tensor) -> dict[str, Callable[[], object]]:
    return {
        "image": lambda: validate_image_tensor(t),
        "plain": lambda: validate_tensor(t),
        "range": lambda: validate_tensor(t, value_range=(0, 1)),
        "not-finite-ok": lambda: validate_tensor(t, finite=False, value_range=(None, 1)),
        "shape-dtype": lambda: validate_tensor(t, shape=(3, None, None), dtype=torch.float32),
    }


def _outcome(fn: Callable[[], object]) -> str:
    try:
        fn()
    except ValidationError as exc:
        return "rejected" if exc.field and exc.expected else f"UNNAMED {exc}"
    except Exception as exc:
        return f"ESCAPED {type(exc).__name__}: {exc}"[:160]
    return "accepted"


def test_torch_exposes_the_kinds_this_suite_expects() -> None:
    """The enumeration finds the float8, sparse and nested kinds (so it really enumerates)."""
    names = {str(d) for d in ALL_DTYPES} | {str(x) for x in ALL_LAYOUTS}
    assert {"torch.float8_e4m3fn", "torch.float8_e5m2", "torch.sparse_csr", "torch.jagged"} <= names


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_every_dtype_is_accepted_or_rejected_by_name(dtype: torch.dtype) -> None:
    """Each dtype torch can make: no torch error escapes; images accept only the float dtypes."""
    t = _make(dtype)
    if t is None:
        pytest.skip(f"torch cannot construct {dtype}")
    outcomes = {name: _outcome(fn) for name, fn in _checks(t).items()}
    assert [o for o in outcomes.values() if o.startswith("ESCAPED")] == []
    assert outcomes["image"] == ("accepted" if dtype in IMAGE_DTYPES else "rejected")
    if outcomes["range"] == "rejected" and dtype not in IMAGE_DTYPES:
        with pytest.raises(ValidationError, match=str(dtype)):
            validate_tensor(t, value_range=(0, 1))


@pytest.mark.parametrize(
    "dtype",
    [d for d in ALL_DTYPES if str(d).startswith(("torch.float8", "torch.float4"))],
    ids=str,
)
def test_float8_and_float4_name_the_dtype_and_what_is_accepted(dtype: torch.dtype) -> None:
    """float8 (e4m3fn, e5m2, fnuz, e8m0) and float4 images: ERR_VALIDATION_DTYPE naming both."""
    t = _make(dtype)
    if t is None:
        pytest.skip(f"torch cannot construct {dtype}")
    with pytest.raises(ValidationError) as caught:
        validate_image_tensor(t)
    assert caught.value.code is ErrorCode.VALIDATION_DTYPE
    assert str(dtype) in str(caught.value)
    assert "torch.float32" in str(caught.value)
    with pytest.raises(ValidationError, match="float32, float16, bfloat16, float64, complex64"):
        validate_tensor(t)


def _of_layout(layout: torch.layout, dense: torch.Tensor) -> torch.Tensor:
    name = str(layout).removeprefix("torch.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "sparse_coo":
            return dense.to_sparse()
        if name.startswith("sparse_b"):
            return dense.to_sparse(layout=layout, blocksize=(2, 2))
        if name.startswith("sparse_"):
            return dense.to_sparse(layout=layout)
        if name == "_mkldnn":
            return dense.to_mkldnn()
        if name == "jagged":
            return torch.nested.nested_tensor([dense[0], dense[1][:, :2]], layout=torch.jagged)
    return dense


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=str)
def test_every_layout_is_rejected_by_name_except_strided(layout: torch.layout) -> None:
    """Sparse COO/CSR/CSC/BSR/BSC, MKL-DNN, jagged: ERR_VALIDATION_TYPE naming the layout."""
    t = _of_layout(layout, torch.rand(3, 4, 4))
    outcomes = {name: _outcome(fn) for name, fn in _checks(t).items()}
    if layout == torch.strided:
        assert outcomes["image"] == "accepted"
        return
    assert set(outcomes.values()) == {"rejected"}, outcomes
    with pytest.raises(ValidationError) as caught:
        validate_image_tensor(t)
    assert caught.value.code is ErrorCode.VALIDATION_TYPE
    assert "torch.strided" in str(caught.value)
    if layout != torch.jagged:
        assert str(layout).removeprefix("torch.") in str(caught.value)


def _quantized() -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(torch.rand(3, 4, 4), 0.1, 0, torch.quint8)


def _nested() -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.nested.nested_tensor([torch.rand(3, 4, 4), torch.rand(3, 4, 4)])


@pytest.mark.parametrize(
    ("make", "words", "code"),
    [
        (_nested, "nested tensor", ErrorCode.VALIDATION_TYPE),
        (_quantized, "quantized tensor", ErrorCode.VALIDATION_TYPE),
        (lambda: torch.empty(3, 4, 4, device="meta"), "meta tensor", ErrorCode.VALIDATION_DEVICE),
    ],
    ids=["nested", "quantized", "meta"],
)
def test_nested_quantized_and_meta_images_are_named(
    make: Callable[[], torch.Tensor], words: str, code: ErrorCode
) -> None:
    """Kinds with no plain values are rejected with what they are and what is accepted."""
    with pytest.raises(ValidationError, match=words) as caught:
        validate_image_tensor(make())
    assert caught.value.code is code
    assert caught.value.expected


def test_a_meta_tensor_passes_shape_only_checks() -> None:
    """With no value check asked for, a meta tensor's shape and dtype are all there is to check."""
    t = torch.empty(2, 3, device="meta")
    assert validate_tensor(t, shape=(2, 3), finite=False) is t
    with pytest.raises(ValidationError, match="meta tensor"):
        validate_tensor(t)


VALID_VARIANTS = {
    "non-contiguous": lambda: torch.rand(8, 8, 3).permute(2, 0, 1),
    "requires-grad": lambda: torch.rand(3, 8, 8, requires_grad=True),
    "channels-last": lambda: torch.rand(2, 3, 8, 8).contiguous(memory_format=torch.channels_last),
    "expanded": lambda: torch.rand(3, 1, 1).expand(3, 64, 64),
    "float64": lambda: torch.rand(3, 8, 8, dtype=torch.float64),
    "bfloat16": lambda: torch.rand(3, 8, 8).to(torch.bfloat16),
    "parameter": lambda: torch.nn.Parameter(torch.rand(3, 8, 8)),
}


@pytest.mark.parametrize("make", VALID_VARIANTS.values(), ids=VALID_VARIANTS.keys())
def test_valid_images_in_unusual_forms_are_accepted(make: Callable[[], torch.Tensor]) -> None:
    """Views, grad-tracking tensors and other float dtypes are valid images, returned unchanged."""
    t = make()
    assert validate_image_tensor(t) is t


@pytest.mark.parametrize(
    "shape",
    [(3, MAX_IMAGE_SIDE + 1, 8), (3, 8, 2**40), (2**20, 3, 64, 64)],
    ids=["tall", "wide-2^40", "batch-2^20"],
)
def test_huge_expanded_images_are_rejected_before_any_value_is_read(shape: tuple[int, ...]):
    """A stride-0 view of absurd size costs no memory; it is rejected by size, not scanned."""
    view = torch.rand((1,) * len(shape)).expand(shape)
    with pytest.raises(ValidationError, match="too large") as caught:
        validate_image_tensor(view)
    assert caught.value.code is ErrorCode.VALIDATION_SHAPE


class _HostileStr(str):
    def replace(self, *args: object, **kwargs: object) -> str:  # type: ignore[override]
        raise RuntimeError("hostile")


def test_a_str_subclass_is_cleaned_as_a_plain_str() -> None:
    """A str subclass's overridden methods never run; the result is a plain str."""
    out = sanitize_input(_HostileStr("a\r\nb"))
    assert (type(out), out) == (str, "a\nb")


def test_prompt_cleaning_keeps_newlines_and_tabs_and_drops_other_controls() -> None:
    """C0/C1 controls and DEL go, \\n and \\t stay, CR and CRLF become \\n."""
    assert sanitize_input("a\tb\x01c\x7fd\x85e\rf\r\ng") == "a\tbcde\nf\ng"


@pytest.mark.parametrize(
    "text", ["x\ud800", "\udfffy", "a\ud83d"], ids=["high", "low-first", "half-emoji"]
)
def test_lone_surrogates_are_rejected_with_their_index(text: str) -> None:
    """An unpaired surrogate is ERR_VALIDATION_PROMPT naming where it is."""
    with pytest.raises(ValidationError, match="unpaired surrogate at index") as caught:
        sanitize_input(text)
    assert caught.value.code is ErrorCode.VALIDATION_PROMPT


def test_error_descriptions_survive_values_whose_repr_raises() -> None:
    """A 5,000-digit int (repr refuses it) is still reported as a ValidationError."""
    with pytest.raises(ValidationError, match=r"expected a torch\.Tensor"):
        validate_tensor(10**5000)
