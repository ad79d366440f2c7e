"""Response shapes of the healthy simulator: models, completions, OpenAI errors for bad paths."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from sim_support import CHAT, chat_body

from pixel_llm_otel.sim import SimulatorServer, reply_text


async def _post(session: aiohttp.ClientSession, sim: SimulatorServer, body: Any) -> Any:
    async with session.post(sim.base_url + CHAT, json=body) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        return await resp.json()


async def test_base_url_is_loopback_v1(sim: SimulatorServer) -> None:
    """base_url is http://127.0.0.1:<bound port>/v1 and the port is a real one."""
    assert sim.port > 0
    assert sim.base_url == f"http://127.0.0.1:{sim.port}/v1"
    assert sim.listening


async def test_models_list_shape(sim: SimulatorServer, session: aiohttp.ClientSession) -> None:
    """GET /v1/models returns an OpenAI list object of model objects."""
    async with session.get(sim.base_url + "/models") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["sim-model", "sim-vision-model"]
    for model in body["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model"
        assert isinstance(model["created"], int)


async def test_chat_completion_shape(sim: SimulatorServer, session: aiohttp.ClientSession) -> None:
    """A chat completion has exactly OpenAI's fields, types and values."""
    body = await _post(session, sim, chat_body("a cat on a mat"))
    assert set(body) == {
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "system_fingerprint",
    }
    assert re.fullmatch(r"chatcmpl-\w+", body["id"])
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["created"] > 1_600_000_000
    assert body["model"] == "sim-model"
    assert isinstance(body["system_fingerprint"], str)
    [choice] = body["choices"]
    assert choice == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": reply_text("sim-model", chat_body("a cat on a mat")["messages"]),
        },
        "logprobs": None,
        "finish_reason": "stop",
    }
    usage = body["usage"]
    assert usage["prompt_tokens"] == 5
    assert usage["completion_tokens"] == len(choice["message"]["content"].split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_reply_depends_on_model_and_last_user_message(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """The reply is deterministic: same request, same text; other prompt or model, other text."""
    first = await _post(session, sim, chat_body("one"))
    again = await _post(session, sim, chat_body("one"))
    other = await _post(session, sim, chat_body("two"))
    model = await _post(session, sim, {**chat_body("one"), "model": "other-model"})
    text = [b["choices"][0]["message"]["content"] for b in (first, again, other, model)]
    assert text[0] == text[1]
    assert text[0] != text[2]
    assert "other-model" in text[3]
    assert text[3] != text[0]
    assert first["id"] != again["id"]


@pytest.mark.parametrize(
    ("max_tokens", "words", "finish"),
    [(0, 0, "length"), (3, 3, "length"), (1000, 13, "stop")],
    ids=["zero", "three", "plenty"],
)
async def test_max_tokens_truncates(
    sim: SimulatorServer, session: aiohttp.ClientSession, max_tokens: int, words: int, finish: str
) -> None:
    """max_tokens caps the reply in words (0 honoured) and sets finish_reason to length."""
    body = await _post(session, sim, chat_body(max_tokens=max_tokens))
    choice = body["choices"][0]
    assert len(choice["message"]["content"].split()) == words
    assert choice["finish_reason"] == finish
    assert body["usage"]["completion_tokens"] == words


async def test_multimodal_content_uses_text_parts(
    sim: SimulatorServer, session: aiohttp.ClientSession
) -> None:
    """A content array with an image part answers as if only its text parts were sent."""
    parts = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    body = await _post(
        session,
        sim,
        {"model": "sim-vision-model", "messages": [{"role": "user", "content": parts}]},
    )
    expected = reply_text("sim-vision-model", [{"role": "user", "content": "what is this"}])
    assert body["choices"][0]["message"]["content"] == expected


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/nope", 404),
        ("POST", "/v2/chat/completions", 404),
        ("GET", "/v1/chat/completions", 405),
    ],
    ids=["unknown-v1", "unknown-root", "wrong-method"],
)
async def test_unknown_paths_get_openai_error(
    sim: SimulatorServer, session: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    """Unknown paths and methods get an OpenAI error body and are counted as not_found."""
    async with session.request(method, sim.url + path) as resp:
        assert resp.status == status
        body = await resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert path in body["error"]["message"]
    assert sim.stats().count(outcome="not_found") == 1
