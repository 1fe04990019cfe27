"""A local fake OpenAI-compatible server whose answers and usage numbers are the ground truth of the fixtures.

Standard library only, so ``record.py`` can run it under any Python. It serves ``POST /v1/chat/completions``
(plain JSON, or server-sent events when ``stream`` is true, with a final usage chunk only when
``stream_options.include_usage`` asks for it) and ``POST /v1/embeddings`` (float lists or the base64 that the
``openai`` client asks for by default). Answers are deterministic functions of the request, so a re-recording
gives the same texts and token counts; only the ids the client and the SDK make up (trace ids, timestamps) change.

Request headers steer the odd cases, so the model names stay real:

- ``x-fake-status: 500`` or ``429`` answers with that error (429 carries ``Retry-After``);
- ``x-fake-finish-reason: ...`` overrides the finish reason (otherwise ``tool_calls`` when the answer calls a
  tool, ``length`` when ``max_tokens`` / ``max_completion_tokens`` cut the answer, else ``stop``);
- ``x-fixture-trace`` / ``x-fixture-call`` are copied into the record, so each exchange can be matched to the
  trace and step of the scenario that made it.

Why hand-written: no maintained package serves a deterministic OpenAI wire format offline and also records the
exact exchange; the server is a few dozen lines of JSON shaping over ``http.server``.

Every exchange is kept in :attr:`FakeOpenAI.exchanges`: the request body, the status, the answer as sent (the
JSON body or the list of stream chunks) and a summary (model, content, tool calls, finish reason, usage).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: What a requested model name is answered with (OpenAI answers with a dated snapshot name).
ANSWERED_MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "text-embedding-3-small": "text-embedding-3-small",
}
#: Canned tool arguments by tool name; other tools get a string for each required property.
TOOL_ARGUMENTS = {"get_weather": {"city": "Paris", "unit": "celsius"}}
CREATED = 1_733_000_000  # a fixed `created` so re-recordings give identical answers
RETRY_AFTER_S = 7


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def chat_usage(messages: list[dict[str, Any]], answer_chars: int) -> dict[str, int]:
    """Deterministic token counts: prompt tokens grow with the messages, cached tokens appear from the 3rd message."""
    prompt_chars = sum(
        len(_text_of(m.get("content"))) + len(json.dumps(m.get("tool_calls", []))) for m in messages
    )
    prompt = 20 * len(messages) + prompt_chars // 4
    cached = 16 * (prompt // 32) if len(messages) >= 3 else 0
    completion = 3 + answer_chars // 4
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cached_tokens": cached,
    }


def chat_answer(body: dict[str, Any], finish_override: str | None) -> dict[str, Any]:
    """The answer to a chat request: content or tool calls, finish reason and usage."""
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    last = messages[-1] if messages else {}
    key = _digest(messages, tools, body.get("model"))
    content: str | None
    tool_calls: list[dict[str, str]] = []
    if tools and last.get("role") != "tool":
        function = tools[0].get("function", {})
        name = function.get("name", "tool")
        arguments = TOOL_ARGUMENTS.get(name) or dict.fromkeys(
            function.get("parameters", {}).get("required", []), "value"
        )
        tool_calls = [{"id": f"call_{key[:24]}", "name": name, "arguments": json.dumps(arguments)}]
        content = None
        finish = "tool_calls"
    else:
        if last.get("role") == "tool":
            content = f"Done: the tool said {_text_of(last.get('content'))[:80]}. Anything else?"
        else:
            question = _text_of(last.get("content"))
            content = f"Fake answer {key[:6]} to «{question[:60]}»: all good, nothing to report today."
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and len(content.split()) > int(limit):
            content = " ".join(content.split()[: int(limit)])
            finish = "length"
    answer_chars = len(content or "") + sum(len(c["arguments"]) + len(c["name"]) for c in tool_calls)
    return {
        "id": f"chatcmpl-{key[:20]}",
        "model": ANSWERED_MODELS.get(body.get("model", ""), body.get("model", "")),
        "content": content,
        "tool_calls": tool_calls,
        "finish_reason": finish_override or finish,
        "usage": chat_usage(messages, answer_chars),
    }


def usage_json(usage: dict[str, int]) -> dict[str, Any]:
    """OpenAI's usage object, cached tokens under ``prompt_tokens_details``."""
    return {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": usage["cached_tokens"], "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion_json(answer: dict[str, Any]) -> dict[str, Any]:
    """A ``chat.completion`` object for a non-streamed answer."""
    message: dict[str, Any] = {"role": "assistant", "content": answer["content"], "refusal": None}
    if answer["tool_calls"]:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in answer["tool_calls"]
        ]
    return {
        "id": answer["id"],
        "object": "chat.completion",
        "created": CREATED,
        "model": answer["model"],
        "system_fingerprint": "fp_fake0001",
        "service_tier": "default",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": answer["finish_reason"]}
        ],
        "usage": usage_json(answer["usage"]),
    }


def chat_chunks(answer: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed answer: role, content pieces, finish, optional usage."""
    base = {
        "id": answer["id"],
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": answer["model"],
        "system_fingerprint": "fp_fake0001",
        "service_tier": "default",
    }
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    words = (answer["content"] or "").split(" ")
    chunks += [
        chunk({"content": " ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "")})
        for i in range(0, len(words), 3)
        if answer["content"]
    ]
    for index, call in enumerate(answer["tool_calls"]):
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["name"], "arguments": ""},
                        }
                    ]
                }
            )
        )
        chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": call["arguments"]}}]}))
    chunks.append(chunk({}, answer["finish_reason"]))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage_json(answer["usage"])})
    return chunks


def embedding_json(body: dict[str, Any]) -> dict[str, Any]:
    """An embeddings list: deterministic vectors (``dimensions`` long, 8 by default), base64 when asked."""
    inputs = body.get("input")
    items = (
        [inputs]
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int))
        else list(inputs or [])
    )
    size = int(body.get("dimensions") or 8)
    data = []
    tokens = 0
    for index, item in enumerate(items):
        digest = hashlib.sha256(json.dumps(item).encode()).digest()
        vector = [round((digest[i % 32] - 128) / 128, 4) for i in range(size)]
        tokens += len(item) if isinstance(item, list) else 1 + len(item) // 4
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    model = ANSWERED_MODELS.get(body.get("model", ""), body.get("model", ""))
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


ERRORS = {
    500: {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    },
    429: {
        "message": "Rate limit reached for requests. Please try again in 7s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    },
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the exchanges are the record."""

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"{}")
        record: dict[str, Any] = {
            "path": self.path,
            "fixture_trace": self.headers.get("x-fixture-trace"),
            "fixture_call": self.headers.get("x-fixture-call"),
            "request": body,
        }
        status, headers, data, kept = self._answer(body)
        self.server.keep(
            record | kept
        )  # before answering: the client may read the record as soon as it has the answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes, dict[str, Any]]:
        """(status, headers, body bytes, what the record keeps) for one request."""
        status = int(self.headers.get("x-fake-status") or 200)
        route = self.path.rstrip("/")
        if route not in ("/v1/chat/completions", "/v1/embeddings"):
            status = 404
        if status != 200:
            error = ERRORS.get(
                status,
                {
                    "message": f"no route {self.path}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                },
            )
            headers = (
                {
                    "Retry-After": str(RETRY_AFTER_S),
                    "x-ratelimit-limit-requests": "500",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{RETRY_AFTER_S}s",
                }
                if status == 429
                else {}
            )
            return (
                status,
                _json_headers(headers),
                json.dumps({"error": error}).encode(),
                {"status": status, "response_headers": headers, "response": {"error": error}, "answer": None},
            )
        if route == "/v1/embeddings":
            answer_json = embedding_json(body)
            usage = answer_json["usage"]
            return (
                200,
                _json_headers(),
                json.dumps(answer_json).encode(),
                {
                    "status": 200,
                    "response": answer_json,
                    "answer": {
                        "model": answer_json["model"],
                        "vectors": len(answer_json["data"]),
                        "usage": {
                            "input_tokens": usage["prompt_tokens"],
                            "output_tokens": None,
                            "cached_tokens": None,
                        },
                    },
                },
            )
        answer = chat_answer(body, self.headers.get("x-fake-finish-reason"))
        summary = {key: answer[key] for key in ("model", "content", "tool_calls", "finish_reason")}
        usage = {
            "input_tokens": answer["usage"]["prompt_tokens"],
            "output_tokens": answer["usage"]["completion_tokens"],
            "cached_tokens": answer["usage"]["cached_tokens"],
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = chat_chunks(answer, include_usage)
            data = (
                b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
            )
            return (
                200,
                {"Content-Type": "text/event-stream; charset=utf-8"},
                data,
                {
                    "status": 200,
                    "stream": chunks,
                    "answer": summary | {"usage": usage if include_usage else None},
                },
            )
        answer_json = chat_completion_json(answer)
        return (
            200,
            _json_headers(),
            json.dumps(answer_json).encode(),
            {"status": 200, "response": answer_json, "answer": summary | {"usage": usage}},
        )


def _json_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", "x-request-id": "req_fake", **(extra or {})}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.exchanges: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def keep(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.exchanges.append(record | {"index": len(self.exchanges)})


class FakeOpenAI:
    """The fake server on ``127.0.0.1`` and a free port; use as a context manager, read :attr:`exchanges`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port))
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        """What ``openai.OpenAI(base_url=...)`` takes."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def exchanges(self) -> list[dict[str, Any]]:
        """Every request received and answer given, in arrival order."""
        return list(self._server.exchanges)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
