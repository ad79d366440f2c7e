"""Fuzzed bad input (tensors of every layout and dtype, prompts, keyword values) only ever raises
ValidationError, and nothing reaches the server."""

from __future__ import annotations

import collections
from typing import Any

import pytest
import torch
from fuzz_inputs import MAX_PROMPT_CHARS, Case, all_cases, all_dtypes, all_layouts

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.pipeline import HybridPixelLLM

MIN_CASES = 2_000
#: Each category's floor, so a generator that silently yields nothing fails the test.
MIN_PER_CATEGORY = {
    "tensor-dtype": 40,
    "tensor-layout": 30,
    "tensor-kind": 10,
    "tensor-shape": 500,
    "tensor-huge": 10,
    "tensor-values": 500,
    "object": 30,
    "prompt-type": 10,
    "prompt-nul": 200,
    "prompt-surrogate": 200,
    "prompt-huge": 150,
    "kw-max_tokens": 300,
    "kw-temperature": 300,
    "kw-raise_on_failure": 5,
}


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return all_cases()


def test_the_fuzz_covers_every_category_and_enough_cases(cases: list[Case]) -> None:
    """At least 2,000 cases, each category at its floor, every dtype and layout torch exposes."""
    counts = collections.Counter(case.category for case in cases)
    assert sum(counts.values()) >= MIN_CASES, counts
    assert {c: counts[c] for c in MIN_PER_CATEGORY if counts[c] < MIN_PER_CATEGORY[c]} == {}
    labels = " ".join(case.label for case in cases)
    images = {torch.float32, torch.float16, torch.bfloat16, torch.float64}
    constructible = [d for d in all_dtypes() if d not in images and _constructible(d)]
    assert [d for d in constructible if f"{d}(" not in labels] == []
    assert [lay for lay in all_layouts() if lay != torch.strided and str(lay) not in labels] == []


def _constructible(dtype: torch.dtype) -> bool:
    try:
        torch.empty(1, dtype=dtype)
    except Exception:
        return False
    return True


async def _call(llm: HybridPixelLLM, case: Case, i: int) -> Any:
    kwargs = dict(case.kwargs)
    entry = kwargs.pop("_entry", ("async", "result", "batch")[i % 3])
    if entry == "batch":
        if any(k in kwargs for k in ("raise_on_failure",)):
            return await llm.generate_result_async(case.images, **kwargs)
        return await llm.generate_batch_async(case.images, **kwargs)
    if entry == "result":
        return await llm.generate_result_async(case.images, **kwargs)
    return await llm.generate_async(case.images, **kwargs)


async def test_every_bad_input_raises_only_validation_error_and_sends_nothing(
    sim, make_llm, cases: list[Case]
) -> None:
    """Each fuzzed case raises ValidationError (nothing else escapes) and no request is sent."""
    llm = make_llm(sim.base_url, max_prompt_chars=MAX_PROMPT_CHARS)
    escaped: list[str] = []
    accepted: list[str] = []
    unnamed: list[str] = []
    for i, case in enumerate(cases):
        try:
            await _call(llm, case, i)
        except ValidationError as exc:
            if not (exc.field and exc.expected):
                unnamed.append(f"{case.category}/{case.label}: {exc}")
        except Exception as exc:  # the defect this test exists to find
            escaped.append(f"{case.category}/{case.label}: {type(exc).__name__}: {exc}"[:200])
        else:
            accepted.append(f"{case.category}/{case.label}")
    assert escaped == []
    assert accepted == []
    assert unnamed == []
    assert sim.stats().total == 0


def test_sync_entry_points_raise_validation_error_too(sim_thread, make_llm, cases: list[Case]):
    """A sample of every category through the sync API: ValidationError, nothing sent."""
    llm = make_llm(sim_thread.base_url, max_prompt_chars=MAX_PROMPT_CHARS)
    sample: dict[str, list[Case]] = collections.defaultdict(list)
    for case in cases:
        if len(sample[case.category]) < 5 and "_entry" not in case.kwargs:
            sample[case.category].append(case)
    for batch in sample.values():
        for case in batch:
            with pytest.raises(ValidationError):
                llm.generate(case.images, **case.kwargs)
    assert sim_thread.stats().total == 0
