"""An OpenAI-compatible HTTP server on 127.0.0.1 for tests: ``POST /v1/chat/completions``
(plain JSON, or server-sent events with ``stream: true``, usage in the last chunk when
``stream_options.include_usage`` asks) and ``POST /v1/moderations``.

No model: it answers what the test scripted. ``server.script`` is a list of steps, one per
request (then ``server.default``): ``ok`` (the reply, streamed word by word), ``429`` and
``500`` (an error body, ``retry-after-ms: 1`` so the client's retries are quick),
``timeout`` (no answer for ``server.delay`` seconds), ``malformed`` (a stream of events
that are not JSON), ``not_chat`` (JSON that is not a chat completion chunk), ``refusal``
(the model's own refusal). Every request is recorded (``server.requests``) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.script: list[str] = []
        self.default = "ok"
        self.reply = "Hello! Thanks for writing. Please restart the router and tell us."
        self.delay = 2.0
        self.flag_words: tuple[str, ...] = ()
        self.requests: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def reset(self) -> None:
        with self.lock:
            self.script = []
            self.default = "ok"
            self.reply = "Hello! Thanks for writing. Please restart the router and tell us."
            self.delay = 2.0
            self.flag_words = ()
            self.requests = []

    def next_step(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAIServer
    protocol_version = "HTTP/1.0"  # one request per connection; a stream ends with it

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "Body is not JSON.", "type": "invalid"}})
            return
        with self.server.lock:
            self.server.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": body}
            )
        if self.path.endswith("/moderations"):
            self._moderation(body)
        elif self.path.endswith("/chat/completions"):
            self._chat(body)
        else:
            self._json(404, {"error": {"message": "No such route.", "type": "not_found"}})

    # ------------------------------------------------------------------ routes
    def _moderation(self, body: dict[str, Any]) -> None:
        text = str(body.get("input", "")).lower()
        flagged = any(word in text for word in self.server.flag_words)
        categories = {"harassment": flagged, "violence": False}
        result = {"flagged": flagged, "categories": categories, "category_scores": {}}
        self._json(200, {"id": "modr-1", "model": "omni-moderation", "results": [result]})

    def _chat(self, body: dict[str, Any]) -> None:
        step = self.server.next_step()
        if step == "429":
            self._json(
                429,
                {"error": {"message": "Rate limit reached.", "type": "rate_limit"}},
                {"retry-after-ms": "1"},
            )
            return
        if step == "500":
            self._json(500, {"error": {"message": "The server had an error.", "type": "server"}})
            return
        if step == "timeout":
            time.sleep(self.server.delay)
            self._json(504, {"error": {"message": "late", "type": "timeout"}})
            return
        model = str(body.get("model", "fake-model"))
        if not body.get("stream"):
            self._json(200, _completion(model, self.server.reply))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if step == "malformed":
            self._event("{this is not json")
            self._event("[DONE]")
            return
        if step == "not_chat":
            self._event(json.dumps({"object": "list", "data": [1, 2, 3]}))
            self._event("[DONE]")
            return
        if step == "refusal":
            self._event(json.dumps(_chunk(model, {"role": "assistant", "refusal": "I can't."})))
            self._event(json.dumps(_chunk(model, {}, finish="stop")))
            self._event("[DONE]")
            return
        self._event(json.dumps(_chunk(model, {"role": "assistant", "content": ""})))
        words = self.server.reply.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            self._event(json.dumps(_chunk(model, {"content": piece})))
        self._event(json.dumps(_chunk(model, {}, finish="stop")))
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": len(words),
                "total_tokens": prompt + len(words),
            }
            self._event(json.dumps({**_chunk(model, None), "choices": [], "usage": usage}))
        self._event("[DONE]")

    # ------------------------------------------------------------------ helpers
    def _json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _event(self, data: str) -> None:
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()


def _chunk(model: str, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
