"""Bad input raises ValidationError (a caller bug) whatever raise_on_failure says; none is sent."""

from __future__ import annotations

import pytest
import torch

from pixel_llm_otel.errors import ErrorCode, ValidationError
from pixel_llm_otel.pipeline import ErrorConfig, HybridConfig, HybridPixelLLM

BAD_IMAGES = [
    ("list", [[0.5]], "images", ErrorCode.VALIDATION_TYPE),
    ("uint8", torch.zeros(3, 8, 8, dtype=torch.uint8), "images", ErrorCode.VALIDATION_DTYPE),
    ("2d", torch.rand(8, 8), "images", ErrorCode.VALIDATION_SHAPE),
    ("one-channel", torch.rand(1, 8, 8), "images", ErrorCode.VALIDATION_SHAPE),
    ("nan", torch.full((3, 4, 4), float("nan")), "images", ErrorCode.VALIDATION_NONFINITE),
    ("above-one", torch.full((3, 4, 4), 2.0), "images", ErrorCode.VALIDATION_RANGE),
    ("empty-batch", torch.rand(0, 3, 4, 4), "images", ErrorCode.VALIDATION_SHAPE),
]


@pytest.mark.parametrize(
    ("bad", "field", "code"), [b[1:] for b in BAD_IMAGES], ids=[b[0] for b in BAD_IMAGES]
)
@pytest.mark.parametrize("raise_on_failure", [False, True], ids=["quiet", "raising"])
async def test_bad_images_raise_validation_error(
    sim, make_llm, observer, bad, field, code, raise_on_failure
):
    """Wrong type, dtype, shape, NaN or range: ValidationError naming the field, no request."""
    llm = make_llm(sim.base_url)
    with pytest.raises(ValidationError) as caught:
        await llm.generate_async(bad, raise_on_failure=raise_on_failure)
    assert (caught.value.field, caught.value.code) == (field, code)
    assert caught.value.expected
    assert sim.stats().count("/v1/chat/completions") == 0
    assert observer.seen.chats == []


def test_uint8_message_suggests_the_conversion(sim_thread, make_llm):
    """The dtype error tells the caller how to convert a uint8 image (sync API)."""
    llm = make_llm(sim_thread.base_url)
    with pytest.raises(ValidationError, match=r"float\(\) / 255"):
        llm.generate(torch.zeros(3, 8, 8, dtype=torch.uint8))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prompt": "x" * 101}, "prompt"),
        ({"prompt": "nul\x00byte"}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"raise_on_failure": "yes"}, "raise_on_failure"),
    ],
    ids=[
        "oversized",
        "nul",
        "not-str",
        "neg-tokens",
        "float-tokens",
        "neg-temp",
        "nan-temp",
        "raise-flag",
    ],
)
async def test_bad_arguments_raise_validation_error(sim, make_llm, image, kwargs, field):
    """Oversized prompts and out-of-range settings raise ValidationError naming the field."""
    llm = make_llm(sim.base_url, max_prompt_chars=100)
    with pytest.raises(ValidationError) as caught:
        await llm.generate_async(image, **kwargs)
    assert caught.value.field == field
    assert sim.stats().total == 0


def test_oversized_prompt_message_is_clear(sim_thread, make_llm, image):
    """The message says how long the prompt was and the limit."""
    llm = make_llm(sim_thread.base_url, max_prompt_chars=10)
    with pytest.raises(ValidationError, match="11 characters, expected at most 10"):
        llm.generate(image, "x" * 11)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"lm_studio_url": "localhost:1234"}, "lm_studio_url"),
        ({"device": "tpu"}, "device"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"temperature": 3.0}, "temperature"),
        ({"cache_size": -1}, "cache_size"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"error_config": {"retry": {"max_attempts": 0}}}, "error_config.retry"),
        ({"error_config": {"retyr": {}}}, "error_config.retyr"),
    ],
    ids=[
        "url",
        "device",
        "tokens",
        "temperature",
        "cache",
        "concurrency",
        "timeout",
        "attempts",
        "typo",
    ],
)
def test_bad_constructor_options_raise(encoder, options, field):
    """Constructor options are validated once, naming the field."""
    with pytest.raises(ValidationError) as caught:
        HybridPixelLLM(encoder=encoder, **options)
    assert caught.value.field is not None
    assert caught.value.field.startswith(field)


def test_error_config_accepts_nested_mappings():
    """error_config as plain dicts builds the resilience config classes."""
    config = ErrorConfig.coerce(
        {
            "retry": {"max_attempts": 5},
            "circuit_breaker": {"cooldown": 2.5},
            "fallback": {"order": ["default"], "default_value": "n/a"},
        }
    )
    assert config.retry.max_attempts == 5
    assert config.circuit_breaker.cooldown == 2.5
    assert config.fallback.order == ("default",)


@pytest.mark.parametrize(("device"), ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_device_words_are_accepted(device):
    """device accepts auto, cpu, cuda, cuda:N and mps."""
    assert HybridConfig(device=device).device == device


def test_cache_size_zero_disables_the_cache_strategy():
    """cache_size=0 drops the cache from the fallback order; otherwise it sizes the cache."""
    assert "cache" not in HybridConfig(cache_size=0).fallback_config.order
    assert HybridConfig(cache_size=7).fallback_config.cache_max_entries == 7


def test_api_key_is_not_in_repr():
    """The API key never shows in the config's repr."""
    assert "s3cret" not in repr(HybridConfig(api_key="s3cret"))


async def test_prompt_only_calls_send_their_own_prompt(sim, make_llm, observer, image):
    """Calls giving only a prompt reuse its checked options; a bad prompt raises every time."""
    llm = make_llm(sim.base_url)
    prompts = ["first prompt", "second prompt", "first prompt"]
    for prompt in prompts:
        await llm.generate_async(image, prompt=prompt)
    sent = [chat["request"].messages[0]["content"] for chat in observer.seen.chats]
    assert [text.split("\n\n")[0] for text in sent] == prompts
    for _ in range(2):
        with pytest.raises(ValidationError) as caught:
            await llm.generate_async(image, prompt="nul\x00byte")
        assert caught.value.field == "prompt"
    assert sim.stats().count("/v1/chat/completions") == len(prompts)
