"""The ``openai`` client adapter (``OpenAIChatModel``) against an OpenAI-compatible server on
127.0.0.1 (``tests/fakes/openai_server.py``): streaming with usage, the client's retries of
429 and 500 with back-off, timeouts, malformed streams, refusals and moderation."""

from __future__ import annotations

from typing import Any

import pytest

from infra.llm.drafters import ModelDrafter
from infra.llm.openai_model import OpenAIChatModel
from infra.llm.ports import ChatMessage, Customer, DraftContext, ProviderError, ThreadItem

ASK = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hello?")]


def model(server: Any, **options: Any) -> OpenAIChatModel:
    return OpenAIChatModel(
        base_url=server.url, model="fake-model", **{"timeout": 5.0, "max_retries": 2, **options}
    )


def test_a_completion_streams_with_its_usage(fake_openai):
    fake_openai.reply = "Please restart the router, then tell us what the light shows."
    pieces: list[str] = []
    done = model(fake_openai, api_key="sk-test-key-from-env").stream(ASK, pieces.append)
    assert "".join(pieces) == fake_openai.reply == done.text
    assert len(pieces) == len(fake_openai.reply.split(" "))  # word by word, as it came
    assert (done.model, done.finish_reason) == ("fake-model", "stop")
    assert (done.prompt_tokens, done.completion_tokens) == (3, 11)  # words, as the fake counts
    [request] = fake_openai.requests
    assert request["body"]["stream"] is True
    assert request["body"]["stream_options"] == {"include_usage": True}
    assert request["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello?"},
    ]
    assert {k.lower(): v for k, v in request["headers"].items()}[
        "authorization"
    ] == "Bearer sk-test-key-from-env"


@pytest.mark.parametrize("status", ["429", "500"])
def test_rate_limits_and_server_errors_are_retried(fake_openai, status):
    fake_openai.script = [status, status]
    done = model(fake_openai, max_retries=2).stream(ASK, lambda _: None)
    assert done.text == fake_openai.reply
    assert len(fake_openai.chat_requests()) == 3


@pytest.mark.parametrize(("status", "said"), [("429", "rate-limiting"), ("500", "answered 500")])
def test_what_is_left_after_the_retries_is_a_provider_error(fake_openai, status, said):
    fake_openai.default = status
    with pytest.raises(ProviderError) as caught:
        model(fake_openai, max_retries=1).stream(ASK, lambda _: None)
    assert caught.value.code == "unavailable"
    assert said in caught.value.detail
    assert len(fake_openai.chat_requests()) == 2  # the first try and one retry


def test_a_server_that_does_not_answer_times_out(fake_openai):
    fake_openai.default = "timeout"
    fake_openai.delay = 1.5
    with pytest.raises(ProviderError) as caught:
        model(fake_openai, timeout=0.3, max_retries=0).stream(ASK, lambda _: None)
    assert caught.value.code == "timeout"


@pytest.mark.parametrize("step", ["malformed", "not_chat"])
def test_malformed_output_is_a_provider_error(fake_openai, step):
    fake_openai.default = step
    pieces: list[str] = []
    with pytest.raises(ProviderError) as caught:
        model(fake_openai).stream(ASK, pieces.append)
    assert caught.value.code == "malformed"
    assert pieces == []


def context(**changes: Any) -> DraftContext:
    from uuid import uuid4

    values: dict[str, Any] = {
        "ticket_id": uuid4(),
        "subject": "Router blinks red",
        "description": "Since this morning. Call me on +44 20 7946 0958 or jo@example.test.",
        "customer": Customer("Jo Bloggs", "Acme", "jo@example.test", "+44 20 7946 0958"),
        "thread": (ThreadItem("customer", "Still red."),),
        "similar": (),
        "language": "en",
        "agent_name": "Ada",
    }
    return DraftContext(**{**values, **changes})


def test_the_models_refusal_is_explained(fake_openai):
    fake_openai.default = "refusal"
    result = ModelDrafter(model(fake_openai)).draft(context(), lambda _: None)
    assert (result.text, result.refusal) == ("", "The model declined: I can't.")


def test_personal_data_is_redacted_before_it_leaves_and_restored_after(fake_openai):
    fake_openai.reply = "Hi Jo, we will call you on [PHONE_1]. Best, Ada"
    pieces: list[str] = []
    result = ModelDrafter(model(fake_openai)).draft(context(), pieces.append)
    sent = fake_openai.chat_requests()[0]["messages"][1]["content"]
    assert "jo@example.test" not in sent
    assert "7946" not in sent
    assert "[EMAIL_1]" in sent
    assert "[PHONE_1]" in sent
    assert result.text == "Hi Jo, we will call you on +44 20 7946 0958. Best, Ada"
    assert "".join(pieces) == result.text


def test_the_providers_moderation_flags_a_draft(fake_openai):
    fake_openai.reply = "You are an idiot."
    fake_openai.flag_words = ("idiot",)
    result = ModelDrafter(model(fake_openai, moderation=True)).draft(context(), lambda _: None)
    assert result.text == ""
    assert result.refusal == "The provider's moderation check flagged it (harassment)."
