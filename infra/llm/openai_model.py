"""``ChatModel`` on the ``openai`` client, for any OpenAI-compatible endpoint (OpenAI, Azure's
OpenAI-compatible endpoint, vLLM, Ollama, a llama.cpp server).

Responses stream (server-sent events) with the token usage in the last chunk. The client
retries rate limits (429), server errors (5xx), timeouts and lost connections itself, with
exponential back-off and jitter, honouring ``Retry-After``; ``max_retries`` says how often.
What is left after the retries becomes a ``ProviderError`` the agent is told about. The key
comes from the environment only (``DESKSTREAM_LLM_API_KEY``); local servers need none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx2
import openai

from infra.llm.ports import ChatMessage, Completion, Delta, ProviderError

NO_KEY = "no-key"  # local servers (vLLM, Ollama, llama.cpp) take any key


class OpenAIChatModel:
    source = "model"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout: float = 30.0,
        max_retries: int = 2,
        max_tokens: int = 600,
        moderation: bool = False,
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.moderation = moderation
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or NO_KEY,
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 5.0)),
            max_retries=max_retries,
        )

    def stream(self, messages: Sequence[ChatMessage], on_delta: Delta) -> Completion:
        parts: list[str] = []
        refusal: list[str] = []
        usage: Any = None
        finish = ""
        model = self.model
        asked: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
        try:
            stream = self._client.chat.completions.create(
                model=self.model,
                messages=asked,
                stream=True,
                stream_options={"include_usage": True},
                max_tokens=self.max_tokens,
                temperature=0.3,
            )
            with stream:
                for chunk in stream:
                    if getattr(chunk, "object", "chat.completion.chunk") != "chat.completion.chunk":
                        raise ProviderError("malformed", "The model sent something else.")
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices or ():
                        delta = choice.delta
                        if delta is not None and delta.content:
                            parts.append(delta.content)
                            on_delta(delta.content)
                        if delta is not None and getattr(delta, "refusal", None):
                            refusal.append(str(delta.refusal))
                        if choice.finish_reason:
                            finish = str(choice.finish_reason)
        except ProviderError:
            raise
        except (openai.APITimeoutError, httpx2.TimeoutException):
            raise ProviderError("timeout", "The model did not answer in time.") from None
        except openai.RateLimitError:
            raise ProviderError(
                "unavailable", "The model's provider is rate-limiting us; try again shortly."
            ) from None
        except openai.APIStatusError as error:
            raise ProviderError(
                "unavailable", f"The model's server answered {error.status_code}."
            ) from None
        except (openai.APIConnectionError, httpx2.TransportError):
            raise ProviderError("unavailable", "The model's server cannot be reached.") from None
        except (
            openai.APIResponseValidationError,
            json.JSONDecodeError,
            TypeError,
            AttributeError,
            KeyError,
            ValueError,
        ):
            raise ProviderError(
                "malformed", "The model's answer was not a chat completion."
            ) from None
        if not parts and not refusal and not finish:
            raise ProviderError("malformed", "The model's answer was not a chat completion.")
        return Completion(
            text="".join(parts),
            model=model,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=finish,
            refusal="".join(refusal),
        )

    def flagged(self, text: str) -> str:
        if not self.moderation:
            return ""
        try:
            answer = self._client.moderations.create(input=text)
        except openai.OpenAIError:
            raise ProviderError("unavailable", "The moderation check cannot be reached.") from None
        flagged = []
        for result in answer.results:
            if result.flagged:
                categories = result.categories.model_dump() if result.categories else {}
                flagged += [name for name, on in categories.items() if on] or ["flagged"]
        return ", ".join(sorted(set(flagged)))

    def close(self) -> None:
        self._client.close()
